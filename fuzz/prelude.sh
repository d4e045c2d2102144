# Sourced by smoke.sh and long.sh: `fuzz_prelude DEFAULT_SECONDS "$@"`
# sets secs and targets (every target when none is named), builds the
# instrumented binaries once and sets bin to their directory. It builds
# once and runs the binaries directly: `cargo fuzz run` would invoke cargo
# per target, and in a git worktree common/build.rs reruns on every
# invocation (its ../.git/HEAD is absent there), which rebuilds masterd and
# agentd each time.
fuzz_prelude() {
  secs=${2:-$1}
  shift 2 || shift $#
  targets=("$@")
  if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
  fi
  nice -n 19 cargo +nightly fuzz build -O
  bin="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
}
