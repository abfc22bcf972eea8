// HTML mail is the sender's markup: parse it inert (DOMParser runs no script and loads
// nothing), keep an allowlist of elements and attributes, and hold back every remote
// resource until the reader allows it. The result is then shown in a sandboxed iframe
// without allow-scripts, under the page's CSP (no inline style or script), so even a
// mistake here cannot run code. Inline styles are dropped: the CSP refuses them anyway.

const ALLOWED_TAGS = new Set([
  "a", "abbr", "address", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite",
  "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption",
  "figure", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
  "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub",
  "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u",
  "ul", "var", "wbr",
]);
// Elements dropped with everything inside them.
const DROPPED_WITH_CONTENT = new Set([
  "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript",
  "template", "svg", "math", "form", "input", "button", "select", "textarea", "link", "meta",
  "base", "title", "head", "audio", "video", "source", "track", "canvas", "portal",
]);
const ALLOWED_ATTRS = new Set([
  "href", "src", "alt", "title", "width", "height", "colspan", "rowspan", "align", "valign",
  "dir", "lang", "cite", "datetime", "start", "type", "reversed", "open", "headers", "scope", "span",
]);

// Kept only so that foldQuotedHtml (lib.ts) finds the mail programs' quotes: these class
// names and this id, nothing else of either attribute.
const QUOTE_CLASSES = new Set(["gmail_quote", "gmail_attr", "yahoo_quoted", "moz-cite-prefix"]);
const QUOTE_IDS = new Set(["divRplyFwdMsg"]);

export interface Sanitized {
  html: string;
  /** How many remote resources were held back. */
  blocked: number;
}

function safeLink(value: string): boolean {
  return /^(https?:|mailto:|#)/i.test(value.trim());
}

function isRemote(value: string): boolean {
  return /^(https?:)?\/\//i.test(value.trim());
}

/** Event-handler and style attributes renamed before parsing. Chrome checks the page's CSP
 *  on them even in an inert parsed document and reports a (blocked) violation; renamed, they
 *  are plain data attributes, which the allowlist below drops anyway. */
export function defuseAttributes(source: string): string {
  return source.replace(/<[a-z][^>]*>/gi, (tag) =>
    tag.replace(/([\s\/"'])(on[a-z]+|style)(\s*=)/gi, "$1data-defused-$2$3"),
  );
}

export function sanitizeHtml(source: string, allowRemote: boolean, doc: Document = document): Sanitized {
  const parsed = new DOMParser().parseFromString(defuseAttributes(source), "text/html");
  let blocked = 0;
  const out = doc.implementation.createHTMLDocument("");
  const clean = (node: Node, into: Node) => {
    for (const child of Array.from(node.childNodes)) {
      if (child.nodeType === Node.TEXT_NODE) {
        into.appendChild(out.createTextNode(child.textContent ?? ""));
        continue;
      }
      if (child.nodeType !== Node.ELEMENT_NODE) continue;
      const el = child as Element;
      const tag = el.tagName.toLowerCase();
      if (DROPPED_WITH_CONTENT.has(tag)) {
        if (tag === "link" || tag === "style") blocked += tag === "link" ? 1 : 0;
        continue;
      }
      if (!ALLOWED_TAGS.has(tag)) {
        clean(el, into); // unknown wrapper (html, body, custom tags): keep its content
        continue;
      }
      const copy = out.createElement(tag);
      for (const attr of Array.from(el.attributes)) {
        const name = attr.name.toLowerCase();
        if (name === "class") {
          const kept = attr.value.split(/\s+/).filter((c) => QUOTE_CLASSES.has(c));
          if (kept.length) copy.setAttribute("class", kept.join(" "));
          continue;
        }
        if (name === "id") {
          if (QUOTE_IDS.has(attr.value)) copy.setAttribute("id", attr.value);
          continue;
        }
        if (!ALLOWED_ATTRS.has(name)) continue;
        const value = attr.value;
        if (name === "href") {
          if (!safeLink(value)) continue;
          copy.setAttribute("href", value);
          copy.setAttribute("target", "_blank");
          copy.setAttribute("rel", "noopener noreferrer nofollow");
          continue;
        }
        if (name === "src") {
          if (tag !== "img") continue;
          if (/^data:image\/(png|gif|jpe?g|webp);/i.test(value)) copy.setAttribute("src", value);
          else if (isRemote(value) && /^https:/i.test(value.trim()) && allowRemote) copy.setAttribute("src", value);
          else if (isRemote(value)) blocked++;
          continue; // cid: and anything else: not shown
        }
        copy.setAttribute(name, value);
      }
      if (tag === "img" && !copy.hasAttribute("src")) continue; // held back or not shown: no broken-image box
      into.appendChild(copy);
      clean(el, copy);
    }
  };
  clean(parsed.body ?? parsed.documentElement, out.body);
  return { html: out.body.innerHTML, blocked };
}

/** The srcdoc of the message frame: the clean body and this origin's mail stylesheet. */
export function frameDocument(body: string, stylesheet: string): string {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="${stylesheet}"></head><body>${body}</body></html>`;
}
