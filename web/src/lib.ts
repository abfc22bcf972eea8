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
