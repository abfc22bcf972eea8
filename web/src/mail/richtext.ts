// Rich-text compose: a contenteditable area whose markup is sent as html_body after the same
// allowlist the reader uses (sanitize.ts; the server applies its own too), with the text as
// the plain part. The editor's commands are the browser's own (bold, italic, lists, links).
import { sanitizeHtml } from "../sanitize";

/** Plain text as editor markup: escaped, one line a <div>, blank lines kept. */
export function textToHtml(text: string): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return text.split("\n").map((line) => `<div>${line ? esc(line) : "<br>"}</div>`).join("");
}

/** The editor's markup as it is sent: allowlisted, links opening elsewhere. */
export function outgoingHtml(editorHtml: string, doc: Document = document): string {
  return sanitizeHtml(editorHtml, true, doc).html;
}

/** A link target the editor accepts (what the reader would keep). */
export function linkTarget(typed: string): string | null {
  const v = typed.trim();
  if (!v) return null;
  if (/^(https?:|mailto:)/i.test(v)) return v;
  if (/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) return `mailto:${v}`;
  if (/^[a-z0-9.-]+\.[a-z]{2,}(\/\S*)?$/i.test(v)) return `https://${v}`;
  return null;
}

/** The editor's text for the plain part (the no-break spaces an editor leaves become spaces). */
export function plainText(el: HTMLElement): string {
  return el.innerText.replace(/\u00a0/g, " ");
}
