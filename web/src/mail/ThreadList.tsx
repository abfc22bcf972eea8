import { useState } from "preact/hooks";
import { shortDate } from "../lib";
import { Icon } from "../icons";
import { Empty, Pager } from "../ui";
import type { BatchAction } from "./MailApp";
import type { ThreadSummary } from "./types";

interface Props {
  title: string;
  label: string;
  busy: boolean;
  threads: ThreadSummary[] | null;
  total: number;
  offset: number;
  pageSize: number;
  cursor: number;
  selected: Set<number>;
  openId: number | null;
  onOpen: (id: number) => void;
  onToggle: (id: number) => void;
  onSelectAll: (all: boolean) => void;
  onPage: (offset: number) => void;
  onAction: (a: BatchAction) => void;
  userLabels: string[];
  onLabel: (label: string) => void;
  onSnooze: (until: string) => void;
  onUnlabel: () => void; // take the current (user) label off the selected conversations
  onDeleteLabel: () => void; // delete the current (user) label
}

/** When a snooze ends, as an ISO time with its offset. */
export function snoozeUntil(choice: string, now: Date = new Date()): string {
  const d = new Date(now);
  if (choice === "hours") d.setHours(d.getHours() + 3);
  else {
    d.setDate(d.getDate() + (choice === "week" ? 7 : 1));
    d.setHours(8, 0, 0, 0);
  }
  return d.toISOString();
}

/** A custom snooze time from a datetime-local value (the reader's local time), as an ISO time;
 *  null when it is empty, unreadable or not in the future. */
export function customSnooze(value: string, now: Date = new Date()): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const at = new Date(value); // no offset in the text: local time
  if (Number.isNaN(at.getTime()) || at.getTime() <= now.getTime()) return null;
  return at.toISOString();
}

/** The value of a datetime-local input for a time (local, to the minute). */
export function localInputValue(d: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}`;
}

export function ThreadList(p: Props) {
  const [custom, setCustom] = useState<string | null>(null); // the custom snooze form's value while open
  const list = p.threads ?? [];
  const all = list.length > 0 && list.every((t) => p.selected.has(t.thread_id));
  const inTrash = p.label === "trash" || p.label === "spam";
  return (
    <section class="thread-list" aria-label={p.title} aria-busy={p.busy ? "true" : "false"}>
      <div class="list-toolbar">
        <input type="checkbox" checked={all} aria-label="Select all" onChange={(e) => p.onSelectAll(e.currentTarget.checked)} />
        {p.selected.size > 0 ? (
          <div class="batch" role="toolbar" aria-label="Actions on the selected conversations">
            <span class="muted">{p.selected.size} selected</span>
            {p.label === "archive" ? <button type="button" onClick={() => p.onAction("unarchive")}>Move to inbox</button>
              : <button type="button" onClick={() => p.onAction("archive")} data-testid="batch-archive">Archive</button>}
            <button type="button" onClick={() => p.onAction("read")}>Read</button>
            <button type="button" onClick={() => p.onAction("unread")}>Unread</button>
            <button type="button" onClick={() => p.onAction("star")}>Star</button>
            {p.label === "spam" ? <button type="button" onClick={() => p.onAction("not_spam")}>Not spam</button>
              : <button type="button" onClick={() => p.onAction("spam")}>Spam</button>}
            {inTrash ? <button type="button" class="danger" onClick={() => p.onAction("delete")}>Delete forever</button>
              : <button type="button" onClick={() => p.onAction("trash")}>Delete</button>}
            <button type="button" onClick={() => p.onAction("mute")}>Mute</button>
            {p.userLabels.length > 0 && (
              <select aria-label="Label the selected conversations" value="" data-testid="batch-label"
                onChange={(e) => { const v = e.currentTarget.value; if (v) p.onLabel(v); }}>
                <option value="">Label…</option>
                {p.userLabels.map((l) => <option key={l} value={l}>{l}</option>)}
              </select>
            )}
            {p.userLabels.includes(p.label) && (
              <button type="button" onClick={p.onUnlabel} data-testid="batch-unlabel">Remove label {p.label}</button>
            )}
            <select aria-label="Snooze the selected conversations" value="" data-testid="batch-snooze"
              onChange={(e) => {
                const v = e.currentTarget.value;
                if (v === "custom") setCustom(localInputValue(new Date(Date.now() + 3600_000)));
                else if (v) p.onSnooze(snoozeUntil(v));
              }}>
              <option value="">Snooze…</option>
              <option value="hours">3 hours</option>
              <option value="tomorrow">Tomorrow 8:00</option>
              <option value="week">Next week</option>
              <option value="custom">Pick a date and time…</option>
            </select>
            {custom !== null && (
              <form class="inline-form snooze-custom" aria-label="Snooze until" onSubmit={(e) => {
                e.preventDefault();
                const until = customSnooze(custom);
                if (until) { setCustom(null); p.onSnooze(until); }
              }}>
                <input type="datetime-local" value={custom} aria-label="Snooze until" data-testid="batch-snooze-at"
                  onInput={(e) => setCustom(e.currentTarget.value)} />
                <button type="submit" disabled={customSnooze(custom) === null} data-testid="batch-snooze-apply">Snooze</button>
                <button type="button" class="ghost" onClick={() => setCustom(null)}>Cancel</button>
              </form>
            )}
          </div>
        ) : (
          <>
            <h1 class="list-title">{p.title}</h1>
            {p.userLabels.includes(p.label) && (
              <button type="button" class="ghost small" onClick={p.onDeleteLabel} data-testid="label-delete">Delete label</button>
            )}
          </>
        )}
        <span class="spacer" />
        <Pager offset={p.offset} limit={p.pageSize} count={list.length} total={p.total} onPage={p.onPage} />
      </div>
      {p.threads === null ? <div class="loading">Loading…</div> : list.length === 0 ? (
        <Empty>{p.title.startsWith("Search") ? "Nothing matches." : "No conversations here."}</Empty>
      ) : (
        <ul class="threads" role="list">
          {list.map((t, i) => (
            <li key={t.thread_id} data-testid="thread-row" data-thread={t.thread_id}
              class={["thread", t.is_read ? "read" : "unread", i === p.cursor ? "cursor" : "",
                p.selected.has(t.thread_id) ? "selected" : "", p.openId === t.thread_id ? "open" : ""].join(" ")}
              onClick={(e) => { if (!(e.target as HTMLElement).closest("input,button")) p.onOpen(t.thread_id); }}>
              <input type="checkbox" checked={p.selected.has(t.thread_id)} aria-label={`Select ${t.subject}`}
                onChange={() => p.onToggle(t.thread_id)} />
              <span class={`star ${t.is_starred ? "on" : ""}`} aria-label={t.is_starred ? "starred" : undefined}>{t.is_starred ? "★" : "☆"}</span>
              <span class="participants">{t.participants || "(nobody)"}{t.n_emails > 1 && <span class="n">{t.n_emails}</span>}</span>
              <span class="summary">
                <a href={`#${location.hash.slice(1).split(/[?&]thread=/)[0]}`} class="thread-subject" data-testid="thread-subject"
                  onClick={(e) => { e.preventDefault(); p.onOpen(t.thread_id); }}>{t.subject || "(no subject)"}</a>
                <span class="snippet"> — {t.snippet}</span>
              </span>
              <span class="markers">
                {t.has_attachments && <Icon name="clip" label="Has attachments" />}
                {t.encryption_level !== "unencrypted" && <span class={`lock lock-${t.encryption_level}`}><Icon name="lock" label={`Encryption: ${t.encryption_level}`} /></span>}
                {t.is_muted && <Icon name="mute" label="Muted" />}
              </span>
              <time class="date" dateTime={t.last_date}>{shortDate(t.last_date)}</time>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
