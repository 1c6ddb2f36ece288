"""Write docs/performance-scaling.svg (hand-made SVG, no matplotlib) from the figures measured for
docs/performance.md. Run: python docs/perf_plot.py"""

from pathlib import Path

# server RSS growth (kB) over N idle mutual-TLS connections (bench/memory_per_connection.py --n N, round 4)
MEMORY = [(0, 0), (250, 59716 - 49100), (500, 71776 - 48816), (1000, 95576 - 49056)]
# bench/concurrent_calls.py (round 4, hold 55 s): seconds since the first call, calls up at once
RAMP = [(0.0, 0), (1.69, 1311), (3.53, 2714), (5.59, 4154), (7.49, 5591), (9.41, 6938),
        (11.51, 8295), (13.61, 9720), (15.28, 10000), (16.97, 10000), (18.66, 10000), (20.34, 10000),
        (22.01, 10000), (23.68, 10000), (25.39, 10000), (27.09, 10000), (28.77, 10000),
        (30.46, 10000), (32.17, 10000), (33.88, 10000), (35.57, 10000), (37.25, 10000),
        (38.93, 10000), (40.6, 10000), (42.27, 10000), (43.93, 10000), (45.61, 10000),
        (47.28, 10000), (48.95, 10000), (50.62, 10000), (52.29, 10000), (53.96, 10000),
        (55.64, 9503), (57.31, 8131), (58.97, 6899), (60.62, 5827), (62.26, 4618), (63.9, 3495),
        (65.54, 2531), (67.15, 1581), (68.76, 154)]


def panel(x0, title, xlabel, ylabel, points, xmax, ymax, xticks, yticks, color):
    w, h, left, bottom = 380, 230, 60, 40
    ox, oy = x0 + left, 30 + h
    sx = lambda x: ox + x / xmax * w  # noqa: E731
    sy = lambda y: oy - y / ymax * h  # noqa: E731
    out = [f'<text x="{ox + w / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>',
           f'<line x1="{ox}" y1="{oy}" x2="{ox + w}" y2="{oy}" stroke="black"/>',
           f'<line x1="{ox}" y1="{oy}" x2="{ox}" y2="{oy - h}" stroke="black"/>',
           f'<text x="{ox + w / 2}" y="{oy + bottom - 6}" text-anchor="middle">{xlabel}</text>',
           f'<text x="{x0 + 14}" y="{oy - h / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {x0 + 14} {oy - h / 2})">{ylabel}</text>']
    for t in xticks:
        out.append(f'<line x1="{sx(t)}" y1="{oy}" x2="{sx(t)}" y2="{oy + 4}" stroke="black"/>'
                   f'<text x="{sx(t)}" y="{oy + 16}" text-anchor="middle" font-size="11">{t:g}</text>')
    for t in yticks:
        out.append(f'<line x1="{ox - 4}" y1="{sy(t)}" x2="{ox + w}" y2="{sy(t)}" stroke="#ddd"/>'
                   f'<text x="{ox - 6}" y="{sy(t) + 4}" text-anchor="end" font-size="11">{t:g}</text>')
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
    out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>' for x, y in points]
    return out


def main() -> None:
    mem = [(n, kb / 1024) for n, kb in MEMORY]
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="960" height="310" font-family="sans-serif" '
             'font-size="12"><rect width="100%" height="100%" fill="white"/>']
    parts += panel(0, "Server RSS growth vs idle mutual-TLS connections", "idle TLS connections",
                   "RSS growth (MB)", mem, 1000, 60, [0, 250, 500, 750, 1000], [0, 15, 30, 45, 60], "#1f77b4")
    parts += panel(480, "10,000 calls across 16 destinations (hold 55 s)", "seconds since the first call",
                   "calls answered and up", RAMP, 75, 10000, [0, 15, 30, 45, 60, 75],
                   [0, 2500, 5000, 7500, 10000], "#d62728")
    parts.append("</svg>")
    out = Path(__file__).with_name("performance-scaling.svg")
    out.write_text("\n".join(parts) + "\n")
    print(out)


if __name__ == "__main__":
    main()
