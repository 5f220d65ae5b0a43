/**
 * The report's one stylesheet, inlined into the page. System fonts only: a font from the
 * network would be a request, and a post-mortem must open on a laptop without one.
 */
export const REPORT_CSS = `
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--blue:#0969da;--run:#8250df;--dry:#818b98;--fail:#bc4c00;--red:#cf222e}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:68rem;margin:0 auto;padding:2.5rem 1.5rem 4rem}
h1{font-size:1.7rem;line-height:1.25;margin:0 0 1rem}
h2{font-size:1.2rem;margin:2.4rem 0 .8rem;padding-bottom:.3rem;border-bottom:1px solid var(--line)}
p,ul{margin:.6rem 0}
li{margin:.2rem 0}
p{max-width:60rem}
code,pre{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:.84em}
code{background:#eff2f5;border-radius:4px;padding:.1em .35em;overflow-wrap:anywhere}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:.8rem 1rem;overflow-x:auto}
pre code{background:none;padding:0;font-size:1em}
.table-wrap{overflow-x:auto;margin:.8rem 0}
table{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{padding:.4rem .65rem;text-align:left;vertical-align:top;border-bottom:1px solid var(--line)}
th{background:var(--soft);font-weight:600;white-space:nowrap;border-bottom:2px solid var(--line)}
tbody tr:nth-child(even){background:#fafbfc}
td.num{text-align:right;white-space:nowrap}
td.nowrap{white-space:nowrap}
.callout{display:flex;gap:1rem;align-items:flex-start;margin:1.2rem 0 1.6rem;padding:1rem 1.2rem;border-radius:8px;border:1px solid;border-left-width:6px}
.callout p{margin:.15rem 0}
.callout-title{font-size:1.15rem;font-weight:700}
.callout .icon{flex:none;width:30px;height:30px;margin-top:.15rem}
.callout .icon path,.callout .icon circle{stroke-width:2.2;stroke-linecap:round;stroke-linejoin:round}
.callout.ok{background:#dafbe1;border-color:#1a7f37;color:#0f4a20}
.callout.ok .icon circle{fill:#1a7f37}.callout.ok .icon path{stroke:#fff}
.callout.notice{background:#fff8c5;border-color:#9a6700;color:#4d3300}
.callout.notice .icon circle{fill:#9a6700}.callout.notice .icon path{stroke:#fff}.callout.notice .icon .dot{fill:#fff}
.callout.alarm{background:#ffebe9;border-color:var(--red);color:#6e0a14}
.callout.alarm .icon path{fill:var(--red);stroke:var(--red)}.callout.alarm .icon path+path{fill:none;stroke:#fff}.callout.alarm .icon .dot{fill:#fff}
.chart-figure{margin:1rem 0 1.5rem}
.figure-title{font-weight:600;margin:0 0 .3rem}
svg.chart{display:block;width:100%;height:auto;font-family:inherit}
svg.chart text{font-size:11px;fill:var(--muted)}
svg.chart .plot{fill:#fcfcfd;stroke:var(--line)}
svg.chart .grid line{stroke:#eaeef2}
svg.chart .tick line{stroke:var(--muted)}
svg.chart .axis-caption{font-style:italic}
svg.chart .count{fill:none;stroke:var(--blue);stroke-width:2.4;stroke-linejoin:round}
svg.chart .point{fill:var(--blue);stroke:#fff;stroke-width:1.5}
svg.chart .point.estimate{fill:#fff;stroke:var(--blue)}
svg.chart .outside rect{fill:var(--red);fill-opacity:.13;stroke:var(--red);stroke-opacity:.35;stroke-dasharray:3 3}
svg.chart .outside text{fill:#a40e26;font-weight:600}
svg.chart .run line{stroke-width:1.6}
svg.chart .run .leader{stroke-width:1;stroke-dasharray:2 2;opacity:.7}
svg.chart .run text{font-weight:600}
svg.chart .run.committed .span{fill:var(--run);fill-opacity:.14}
svg.chart .run.committed line{stroke:var(--run)}
svg.chart .run.committed text{fill:#6639ba}
svg.chart .run.dry-run .span{fill:none}
svg.chart .run.dry-run line{stroke:var(--dry);stroke-dasharray:5 4}
svg.chart .run.dry-run text{fill:#59636e;font-style:italic;font-weight:400}
svg.chart .run.not-committed .span{fill:none}
svg.chart .run.not-committed line{stroke:var(--fail);stroke-dasharray:1.5 3}
svg.chart .run.not-committed text{fill:#953800;font-weight:400}
.legend{display:flex;flex-wrap:wrap;gap:.4rem 1.4rem;list-style:none;padding:0;margin:.5rem 0 0;font-size:.85rem;color:var(--muted)}
.legend li{display:flex;align-items:center;gap:.45rem;margin:0}
.swatch{display:inline-block;width:22px;height:12px;border-radius:2px}
.swatch.count{height:3px;background:var(--blue)}
.swatch.committed{background:rgba(130,80,223,.18);border-right:2px solid var(--run)}
.swatch.dry-run{border-right:2px dashed var(--dry)}
.swatch.not-committed{border-right:2px dotted var(--fail)}
.swatch.outside{background:rgba(207,34,46,.15);border:1px dashed rgba(207,34,46,.5)}
.note{font-size:.85rem;color:var(--muted)}
@media print{main{max-width:none;padding:0}.callout,tbody tr:nth-child(even){-webkit-print-color-adjust:exact;print-color-adjust:exact}h2{break-after:avoid}tr{break-inside:avoid}}
`.trim();
