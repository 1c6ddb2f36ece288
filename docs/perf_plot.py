"""Write docs/performance-scaling.svg (hand-made SVG, no matplotlib) from the figures measured for
docs/performance.md. Run: python docs/perf_plot.py"""

from pathlib import Path

# server RSS growth (kB) over N idle mutual-TLS connections (bench/memory_per_connection.py --n N, after
# the TLS optimisations)
MEMORY = [(0, 0), (250, 64492 - 49476), (500, 81276 - 49620), (1000, 114736 - 49596)]
# bench/concurrent_calls.py (baseline run, hold 40 s): seconds since the first call, calls up at once
RAMP = [(0.0, 0), (2.03, 313), (4.07, 644), (6.0, 1049), (8.19, 1366), (10.14, 1701), (12.27, 2080),
        (14.35, 2812), (16.55, 3421), (19.05, 3941), (21.25, 4763), (23.26, 5204), (25.78, 5790),
        (27.71, 6675), (30.28, 7137), (32.41, 7585), (34.46, 8038), (37.43, 8551), (39.55, 8973),
        (41.75, 9073), (43.89, 9110), (46.83, 8842), (48.76, 8535), (50.7, 8231), (52.65, 7753),
        (54.57, 7124), (56.46, 6606), (58.36, 6247), (60.3, 5552), (62.21, 5015), (64.39, 4553),
        (66.39, 3939), (68.37, 3323), (70.28, 2865), (72.29, 2442), (74.15, 2040), (76.04, 1770),
        (77.9, 1343), (79.77, 972), (81.61, 692), (83.52, 332), (85.38, 89)]


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
                   "RSS growth (MB)", mem, 1000, 80, [0, 250, 500, 750, 1000], [0, 20, 40, 60, 80], "#1f77b4")
    parts += panel(480, "10,000 calls across 16 destinations (hold 40 s)", "seconds since the first call",
                   "calls answered and up", RAMP, 90, 10000, [0, 15, 30, 45, 60, 75, 90],
                   [0, 2500, 5000, 7500, 10000], "#d62728")
    parts.append("</svg>")
    out = Path(__file__).with_name("performance-scaling.svg")
    out.write_text("\n".join(parts) + "\n")
    print(out)


if __name__ == "__main__":
    main()
