"""Small line charts as standalone SVG files, with no plotting library.

line_chart(path, title, xlabel, ylabel, series) draws each series (a name
and a list of (x, y) points) as a polyline with markers, on a log-scaled x
axis ticked at the measured x values (agent counts grow by decades) and a
linear or log y axis, with a legend. Good enough for "how does this grow with the number of agents".
"""

import math

W, H = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 40, 50
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]


def _ticks(lo, hi, log):
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        return [10.0**e for e in range(a, b + 1)]
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    out, v = [], start
    while v <= hi + step * 0.01:
        out.append(round(v, 10))
        v += step
    return out


def _fmt(v):
    if v >= 1000 and v == int(v):
        return f"{int(v):,}"
    if v == int(v):
        return str(int(v))
    return f"{v:g}"


def line_chart(path, title, xlabel, ylabel, series, logy=False):
    """Writes an SVG line chart of series {name: [(x, y), ...]} to path."""
    pts = [(x, y) for s in series.values() for x, y in s if y is not None and x > 0]
    if not pts:
        return
    xs = [x for x, _ in pts]
    ys = [y for _, y in pts if not logy or y > 0]
    xlo, xhi = min(xs), max(xs)
    if xlo == xhi:
        xlo, xhi = xlo / 2, xhi * 2
    ylo = min(ys) if logy else 0.0
    yhi = max(ys) * 1.1 if ys else 1.0
    # The x ticks are the measured sizes; a little room either side.
    xt = sorted(set(xs))
    xlo, xhi = xlo / 1.25, xhi * 1.25
    yt = _ticks(max(ylo, 1e-9), yhi, True) if logy else _ticks(0.0, yhi, False)
    ylo, yhi = (yt[0], yt[-1]) if logy else (0.0, max(yt[-1], yhi))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x):
        return LEFT + pw * (math.log10(x) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo))

    def py(y):
        if logy:
            y = max(y, ylo)
            f = (math.log10(y) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo))
        else:
            f = (y - ylo) / (yhi - ylo) if yhi > ylo else 0
        return TOP + ph * (1 - f)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2 - RIGHT / 2}" y="22" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{title}</text>',
    ]
    for t in xt:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ph + 16}" text-anchor="middle">{_fmt(t)}</text>')
    for t in yt:
        y = py(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
    )
    out.append(f'<text x="{LEFT + pw / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>')
    out.append(
        f'<text x="16" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + ph / 2})">{ylabel}</text>'
    )
    for i, (name, s) in enumerate(series.items()):
        c = COLOURS[i % len(COLOURS)]
        good = [(x, y) for x, y in sorted(s) if y is not None and x > 0 and (not logy or y > 0)]
        if not good:
            continue
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in good)
        out.append(f'<polyline points="{line}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y in good:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{c}"/>')
        ly = TOP + 14 + 18 * i
        out.append(
            f'<line x1="{LEFT + pw + 12}" y1="{ly - 4}" x2="{LEFT + pw + 32}" y2="{ly - 4}" '
            f'stroke="{c}" stroke-width="2"/>'
        )
        out.append(f'<text x="{LEFT + pw + 38}" y="{ly}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
