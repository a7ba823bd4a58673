"""Building blocks of the self-contained HTML reports: the page shell (inline CSS and the
sort/filter script), escaped tables and inline images as data URIs. Nothing is fetched."""

from __future__ import annotations

import base64
import io
from html import escape

from audit.report.safe_text import safe_text

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
.headline{font-size:1.1em;font-weight:600;background:#f3f6fa;padding:.8em;border-radius:6px}
.warning{background:#fff3cd;border-left:4px solid #e0a800;padding:.5em .8em;margin:.4em 0}
.note{background:#eef;border-left:4px solid #88c;padding:.5em .8em;margin:.4em 0}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}table.sortable th{cursor:pointer}
td.num{text-align:right;white-space:nowrap}img.thumb{max-width:128px;max-height:128px}
input.filter{margin:.3em 0;padding:.3em;width:20em}
"""

# Makes every table.sortable sortable (click a header) and filterable (the input before it);
# marks <body data-report-js="ready"> once done, so tests can tell that it ran.
SCRIPT = """
(function(){
function cellValue(row,i){var t=row.cells[i].getAttribute('data-sort')||row.cells[i].textContent;
 var n=parseFloat(t);return isNaN(n)||String(n)!==t.trim()?t.toLowerCase():n;}
function sortBy(table,i){var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
 var dir=table.getAttribute('data-sort-col')==String(i)&&table.getAttribute('data-sort-dir')=='asc'?'desc':'asc';
 rows.sort(function(a,b){var x=cellValue(a,i),y=cellValue(b,i);
  if(typeof x!==typeof y){x=String(x);y=String(y);}var c=x<y?-1:x>y?1:0;return dir=='asc'?c:-c;});
 rows.forEach(function(r){body.appendChild(r);});
 table.setAttribute('data-sort-col',i);table.setAttribute('data-sort-dir',dir);}
function filter(table,text){text=text.toLowerCase();var shown=0;
 Array.prototype.forEach.call(table.tBodies[0].rows,function(r){
  var hit=r.textContent.toLowerCase().indexOf(text)>=0;r.style.display=hit?'':'none';if(hit)shown++;});
 table.setAttribute('data-shown',shown);}
document.querySelectorAll('table.sortable').forEach(function(table){
 Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
  th.title='click to sort';th.addEventListener('click',function(){sortBy(table,i);});});
 var input=document.createElement('input');input.className='filter';input.placeholder='filter rows...';
 input.addEventListener('input',function(){filter(table,input.value);});
 table.parentNode.insertBefore(input,table);filter(table,'');});
document.body.setAttribute('data-report-js','ready');
})();
"""


def page(title: str, body: list[str]) -> str:
    """A complete HTML document: inline style, the given body parts, the inline script; control
    characters the data brought are shown escaped (safe_text)."""
    return safe_text(
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n",
        keep_layout=True,
    )


def table(header: list[str], rows: list[list[str]], sortable: bool = False, table_id: str = "") -> str:
    """A table; cells are HTML already (escape text with `cell`), header cells are escaped here."""
    attrs = (' class="sortable"' if sortable else "") + (f' id="{escape(table_id)}"' if table_id else "")
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def cell(value, numeric: bool = False) -> str:
    """One escaped <td>; None shows empty."""
    text = "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
    return f'<td class="num">{escape(text)}</td>' if numeric else f"<td>{escape(text)}</td>"


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def figure_png(fig) -> str:
    """A matplotlib Figure (made without pyplot, so no global state) as an inline <img>."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="plot" src="{data_uri(buffer.getvalue(), "image/png")}">'
