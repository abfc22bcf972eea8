// Pure helpers (unit-tested in lib.test.ts): formatting, quoting, search suggestions.

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// Formatters are made once: a toLocale*String call builds a new one each time (slow in a list).
const TIME = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });
const DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short" });
const DAY_YEAR = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });
const FULL = new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" });

/** "14:05" today, "3 Mar" this year, "3 Mar 2024" before. */
export function shortDate(iso: string, now: Date = new Date()): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return "";
  if (d.toDateString() === now.toDateString()) return TIME.format(d);
  return (d.getFullYear() === now.getFullYear() ? DAY : DAY_YEAR).format(d);
}

export function fullDate(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d.getTime()) ? "" : FULL.format(d);
}

/** Addresses typed in a To/Cc field: split on commas and semicolons, outside quotes and <>. */
export function splitAddresses(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quoted = false;
  let angle = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === "<" && !quoted) angle = true;
    else if (ch === ">" && !quoted) angle = false;
    if ((ch === "," || ch === ";") && !quoted && !angle) {
      if (cur.trim()) out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

export interface Address {
  name: string | null;
  email: string;
}

export function formatAddress(a: Address): string {
  return a.name ? `${a.name} <${a.email}>` : a.email;
}

/** Split a plain-text body into what the sender wrote and the quoted part below it. */
export function foldQuoted(text: string): { visible: string; quoted: string } {
  const lines = text.replace(/\r\n/g, "\n").split("\n");
  let cut = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const next = lines[i + 1] ?? "";
    if (/^On .+ wrote:\s*$/.test(line) && (next.startsWith(">") || next === "")) {
      cut = i;
      break;
    }
    if (line.startsWith(">") && lines.slice(i).every((l) => l.startsWith(">") || l.trim() === "")) {
      cut = i;
      break;
    }
  }
  return {
    visible: lines.slice(0, cut).join("\n").replace(/\s+$/, ""),
    quoted: lines.slice(cut).join("\n").replace(/\s+$/, ""),
  };
}

/** The reply's subject: one "Re: " in front, not a chain of them. */
export function replySubject(subject: string, prefix = "Re"): string {
  const stripped = subject.replace(/^((re|fwd?|aw|sv)\s*:\s*)+/i, "");
  return `${prefix}: ${stripped}`;
}

/** The quoted original under a reply. */
export function quoteBody(from: string, date: string, body: string): string {
  const quoted = body
    .split(/\r?\n/)
    .map((l) => (l ? `> ${l}` : ">"))
    .join("\n");
  return `\n\nOn ${date}, ${from} wrote:\n${quoted}\n`;
}

export const SEARCH_OPERATORS = [
  "from:",
  "to:",
  "cc:",
  "subject:",
  "label:",
  "has:attachment",
  "is:unread",
  "is:read",
  "is:starred",
  "is:encrypted",
  "before:",
  "after:",
  "larger:",
  "smaller:",
];

/** Operators that complete the last word of a query being typed. */
export function searchSuggestions(query: string, labels: string[] = []): string[] {
  const words = query.split(/\s+/);
  const last = (words[words.length - 1] ?? "").toLowerCase();
  const neg = last.startsWith("-") ? "-" : "";
  const stem = neg ? last.slice(1) : last;
  if (!stem) return [];
  const head = words.slice(0, -1).join(" ");
  const done = (s: string) => (head ? `${head} ${neg}${s}` : `${neg}${s}`);
  if (stem.startsWith("label:")) {
    const part = stem.slice(6);
    return labels.filter((l) => l.toLowerCase().startsWith(part) && l.toLowerCase() !== part).map((l) => done(`label:${l}`));
  }
  return SEARCH_OPERATORS.filter((op) => op.startsWith(stem) && op !== stem).map(done);
}

/** Page numbers: "1–50 of 132". */
export function pageLabel(offset: number, count: number, total: number): string {
  if (total === 0 || count === 0) return `0 of ${total}`;
  return `${offset + 1}–${offset + count} of ${total}`;
}

/** What to tell the reader when the inbox's unread count went from `before` to `after` on a
 *  push event; null for nothing new (a first load, or fewer unread). */
export function newMailNotice(before: number | undefined, after: number): string | null {
  if (before === undefined || after <= before) return null;
  const n = after - before;
  return `New mail: ${n} new conversation${n === 1 ? "" : "s"} in the inbox`;
}

/** Preferences of the settings' `notifications` (GET /me/settings). */
export interface NotificationPrefs {
  new_mail: boolean;
  sound: boolean;
  desktop: boolean;
}

/** How to tell the reader about new mail: nothing, a toast in the page, or a system notification
 *  (only when the page is not in view and the browser allows it; else the toast). */
export function noticeChannel(
  prefs: NotificationPrefs, permission: "granted" | "denied" | "default" | "unsupported", hidden: boolean,
): "none" | "toast" | "system" {
  if (!prefs.new_mail) return "none";
  if (prefs.desktop && permission === "granted" && hidden) return "system";
  return "toast";
}

// ---- Quoted text in HTML mail -------------------------------------------------------------
// Runs on the sanitiser's output (sanitize.ts), which is the browser's own serialisation of
// an allowlisted tree: tags from a short list, attributes in double quotes, "<" in text as
// "&lt;", no comments. So a small tokenizer reads it exactly; anything it does not expect
// leaves the HTML unchanged. The fold only adds <details class="quoted"><summary> around
// whole elements: it never rewrites the sender's markup.

const VOID_TAGS = new Set(["area", "br", "col", "hr", "img", "wbr"]);
const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s"'>\/=]+(?:="[^"]*")?)*)\s*\/?>/y;

interface HtmlElement { tag: string; open: string; close: string; attrs: string; children: HtmlNode[] }
type HtmlNode = string | HtmlElement;

function parseSanitized(html: string): HtmlNode[] | null {
  const root: HtmlElement = { tag: "", open: "", close: "", attrs: "", children: [] };
  const stack: HtmlElement[] = [root];
  let i = 0;
  while (i < html.length) {
    const lt = html.indexOf("<", i);
    const end = lt < 0 ? html.length : lt;
    if (end > i) stack[stack.length - 1].children.push(html.slice(i, end));
    if (lt < 0) break;
    TAG.lastIndex = lt;
    const m = TAG.exec(html);
    if (!m) return null;
    const tag = m[2].toLowerCase();
    if (m[1]) {
      const top = stack.pop();
      if (!top || top === root || top.tag !== tag) return null;
      top.close = m[0];
    } else {
      const el: HtmlElement = { tag, open: m[0], close: "", attrs: m[3], children: [] };
      stack[stack.length - 1].children.push(el);
      if (!VOID_TAGS.has(tag)) stack.push(el);
    }
    i = TAG.lastIndex;
  }
  return stack.length === 1 ? root.children : null;
}

function serialize(nodes: HtmlNode[]): string {
  return nodes.map((n) => (typeof n === "string" ? n : n.open + serialize(n.children) + n.close)).join("");
}

function attr(el: HtmlElement, name: string): string | null {
  const m = new RegExp(`\\s${name}="([^"]*)"`, "i").exec(el.attrs);
  return m ? m[1] : null;
}

function hasClass(el: HtmlElement, ...names: string[]): boolean {
  const tokens = (attr(el, "class") ?? "").split(/\s+/);
  return names.some((n) => tokens.includes(n));
}

function textOf(nodes: HtmlNode[]): string {
  return nodes.map((n) => (typeof n === "string" ? n : textOf(n.children))).join("");
}

/** Shows something: text other than white space, or an image. */
function visible(nodes: HtmlNode[]): boolean {
  return nodes.some((n) =>
    typeof n === "string" ? n.replace(/&nbsp;/g, " ").trim() !== "" : n.tag === "img" || visible(n.children),
  );
}

/** Blank between two blocks: white space and line breaks. */
function blank(n: HtmlNode): boolean {
  return typeof n === "string" ? n.replace(/&nbsp;/g, " ").trim() === "" : n.tag === "br";
}

/** The quotes among siblings, as [start, end) ranges: Gmail's div.gmail_quote, Yahoo's
 *  div.yahoo_quoted, any blockquote (Apple Mail's type=cite among them), Thunderbird's
 *  div.moz-cite-prefix with the blockquote after it, and Outlook on the web's reply header
 *  (div#divRplyFwdMsg, with the rule before it) with everything after it. */
function quotesIn(siblings: HtmlNode[]): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  let from = 0; // a quote starts after the one before
  for (let i = 0; i < siblings.length; i++) {
    const n = siblings[i];
    if (typeof n === "string") continue;
    let range: [number, number] | null = null;
    if (n.tag === "blockquote" || (n.tag === "div" && hasClass(n, "gmail_quote", "yahoo_quoted"))) {
      range = [i, i + 1];
    } else if (hasClass(n, "moz-cite-prefix")) {
      let j = i + 1;
      while (j < siblings.length && blank(siblings[j])) j++;
      const next = siblings[j];
      if (next !== undefined && typeof next !== "string" && next.tag === "blockquote") range = [i, j + 1];
    } else if (attr(n, "id") === "divRplyFwdMsg") {
      let k = i - 1;
      while (k >= from && blank(siblings[k])) k--;
      const before = siblings[k];
      range = [k >= from && typeof before !== "string" && before.tag === "hr" ? k : i, siblings.length];
    }
    if (!range) continue;
    const group = siblings.slice(range[0], range[1]);
    if (forwarded(group) || !visible(group)) continue;
    found.push(range);
    from = range[1];
    i = range[1] - 1;
  }
  return found;
}

/** A forwarded message is the content, not a quote to hide. */
function forwarded(nodes: HtmlNode[]): boolean {
  return /^\s*(-+\s*(original|forwarded) message\s*-+|begin forwarded message:)/i.test(
    textOf(nodes).replace(/&nbsp;/g, " "),
  );
}

const SUMMARY = '<summary title="Show the quoted text" aria-label="Show the quoted text">•••</summary>';

/** The sanitised HTML of a message with each outermost quote folded into
 *  <details class="quoted">. A message that is nothing but quotes shows them open. */
export function foldQuotedHtml(html: string): string {
  const tree = parseSanitized(html);
  if (!tree) return html;
  let folded = 0;
  let outside = false; // something shows outside the quotes
  const survey = (nodes: HtmlNode[]) => {
    const quotes = quotesIn(nodes);
    folded += quotes.length;
    nodes.forEach((n, i) => {
      if (quotes.some(([s, e]) => i >= s && i < e)) return;
      if (typeof n === "string") outside ||= !blank(n);
      else if (n.tag === "img") outside = true;
      else survey(n.children);
    });
  };
  survey(tree);
  if (folded === 0) return html;
  const open = `<details class="quoted"${outside ? "" : " open"}>${SUMMARY}`;
  const fold = (nodes: HtmlNode[]): HtmlNode[] => {
    const quotes = quotesIn(nodes);
    const out: HtmlNode[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const q = quotes.find(([s]) => s === i);
      if (q) {
        out.push({ tag: "details", open, close: "</details>", attrs: "", children: nodes.slice(q[0], q[1]) });
        i = q[1] - 1;
        continue;
      }
      const n = nodes[i];
      out.push(typeof n === "string" ? n : { ...n, children: fold(n.children) });
    }
    return out;
  };
  return serialize(fold(tree));
}
