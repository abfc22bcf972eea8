import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { foldQuoted, foldQuotedHtml, formatAddress, formatBytes, fullDate, quoteBody, replySubject } from "../lib";
import { frameDocument, sanitizeHtml } from "../sanitize";
import { Icon } from "../icons";
import { errorToast, Modal, useKeydown } from "../ui";
import { previewKind, previewText } from "./preview";
import type { BatchAction } from "./MailApp";
import type { Attachment, ComposeInit, EmailDetail, EmailSummary, ThreadDetail } from "./types";
import mailCss from "../mail.css?url";

interface Props {
  id: number;
  me: string;
  onClose: () => void;
  onAction: (a: BatchAction) => void;
  onUnlabel: (label: string) => void;
  userLabels: string[];
  onCompose: (c: ComposeInit) => void;
  onChanged: () => void;
}

export function ThreadView(p: Props) {
  const [thread, setThread] = useState<ThreadDetail | null>(null);
  const [bodies, setBodies] = useState<Record<number, EmailDetail>>({});
  const [expanded, setExpanded] = useState<Set<number>>(new Set());
  const ref = useRef<HTMLElement>(null);

  const fetchBody = async (id: number) => {
    if (bodies[id]) return;
    try {
      const e = await api.get<EmailDetail>(`/emails/${id}`);
      setBodies((b) => ({ ...b, [id]: e }));
    } catch (err) {
      errorToast(err);
    }
  };

  useEffect(() => {
    (async () => {
      try {
        const t = await api.get<ThreadDetail>(`/threads/${p.id}`);
        setThread(t);
        const last = t.emails[t.emails.length - 1];
        const open = new Set(t.emails.filter((e) => !e.is_read).map((e) => e.email_id));
        if (last) open.add(last.email_id);
        setExpanded(open);
        open.forEach((id) => fetchBody(id));
        if (!t.is_read) {
          await api.post("/threads/batch", { ids: [t.thread_id], action: "read" });
          p.onChanged();
        }
        ref.current?.focus();
      } catch (err) {
        errorToast(err);
        p.onClose();
      }
    })();
  }, [p.id]);

  const latest = thread?.emails[thread.emails.length - 1];
  const reply = (all: boolean) => {
    if (!thread || !latest) return;
    const body = bodies[latest.email_id];
    const fromMe = latest.from.some((a) => a.email === p.me);
    const to = fromMe ? latest.to : latest.from;
    const cc = all ? [...latest.to, ...latest.cc].filter((a) => a.email !== p.me && !to.some((t) => t.email === a.email)) : [];
    p.onCompose({
      to: to.map(formatAddress).join(", "),
      cc: cc.map(formatAddress).join(", "),
      subject: replySubject(thread.subject),
      body: quoteBody(latest.from.map(formatAddress).join(", "), fullDate(latest.date ?? latest.received_at), body?.text_body ?? latest.snippet),
      threadId: thread.thread_id,
      replyTo: latest.email_id,
    });
  };
  const forward = () => {
    if (!thread || !latest) return;
    const body = bodies[latest.email_id];
    p.onCompose({
      subject: replySubject(thread.subject, "Fwd"),
      body: `\n\n---------- Forwarded message ----------\nFrom: ${latest.from.map(formatAddress).join(", ")}\nDate: ${fullDate(latest.date ?? latest.received_at)}\nSubject: ${latest.subject}\n\n${body?.text_body ?? latest.snippet}`,
      attachmentIds: latest.attachments.map((a) => `${latest.email_id}/${a.index}`),
    });
  };

  useKeydown((e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || (e.target as HTMLElement).closest("input, textarea, select, [contenteditable]")) return;
    if (e.key === "r") reply(false);
    else if (e.key === "a") reply(true);
    else if (e.key === "f") forward();
    else return;
    e.preventDefault();
    e.stopImmediatePropagation();
  }, true);

  if (!thread) return <article class="thread-view" aria-busy="true"><div class="loading">Loading…</div></article>;
  return (
    <article class="thread-view" data-testid="thread-view" ref={ref} tabIndex={-1} aria-label={thread.subject}>
      <div class="view-toolbar" role="toolbar" aria-label="Conversation actions">
        <button type="button" class="icon back" aria-label="Back to the list" onClick={p.onClose}>←</button>
        <button type="button" onClick={() => p.onAction("archive")}>Archive</button>
        <button type="button" onClick={() => p.onAction("spam")}>Spam</button>
        <button type="button" onClick={() => p.onAction("trash")}>Delete</button>
        <button type="button" onClick={() => p.onAction("unread")}>Mark unread</button>
        <button type="button" onClick={() => p.onAction(thread.is_starred ? "unstar" : "star")}>{thread.is_starred ? "Unstar" : "Star"}</button>
        <button type="button" onClick={() => p.onAction(thread.is_muted ? "unmute" : "mute")}>{thread.is_muted ? "Unmute" : "Mute"}</button>
      </div>
      <h1 class="thread-title">{thread.subject || "(no subject)"}
        {thread.labels.filter((l) => !["inbox", "sent", "starred"].includes(l)).map((l) => (
          <span key={l} class="badge" data-testid="thread-label" data-label={l}>{l}
            {p.userLabels.includes(l) && (
              <button type="button" class="badge-remove" aria-label={`Remove the label ${l}`} data-testid="thread-label-remove"
                onClick={() => { p.onUnlabel(l); setThread({ ...thread, labels: thread.labels.filter((x) => x !== l) }); }}>×</button>
            )}
          </span>
        ))}
      </h1>
      {thread.encryption_level !== "unencrypted" && (
        <p class={`banner banner-${thread.encryption_level === "danger" ? "error" : "info"}`}>
          <Icon name="lock" /> Encryption: {thread.encryption_level}{thread.encryption_level === "danger" ? " — part of this conversation went out unencrypted." : ""}
        </p>
      )}
      {thread.emails.map((e) => (
        <Message key={e.email_id} summary={e} body={bodies[e.email_id]} expanded={expanded.has(e.email_id)}
          onToggle={() => {
            const next = new Set(expanded);
            if (next.has(e.email_id)) next.delete(e.email_id);
            else { next.add(e.email_id); fetchBody(e.email_id); }
            setExpanded(next);
          }} />
      ))}
      <div class="reply-bar">
        <button type="button" class="primary" onClick={() => reply(false)} data-testid="reply">↩ Reply</button>
        <button type="button" onClick={() => reply(true)}>↩↩ Reply all</button>
        <button type="button" onClick={forward}>↪ Forward</button>
      </div>
    </article>
  );
}

function Message(props: { summary: EmailSummary; body?: EmailDetail; expanded: boolean; onToggle: () => void }) {
  const e = props.summary;
  const from = e.from[0];
  return (
    <section class={`message ${props.expanded ? "expanded" : "collapsed"}`}>
      <button type="button" class="message-head" onClick={props.onToggle} aria-expanded={props.expanded}>
        <span class="avatar" aria-hidden="true">{(from?.name || from?.email || "?").slice(0, 1).toUpperCase()}</span>
        <span class="from"><strong>{from?.name || from?.email}</strong>
          {props.expanded && from?.name && <span class="muted small"> &lt;{from.email}&gt;</span>}
          {props.expanded && <span class="recipients muted small">to {[...e.to, ...e.cc].map((a) => a.name || a.email).join(", ")}</span>}
          {!props.expanded && <span class="muted small snippet-line">{e.snippet}</span>}
        </span>
        {e.encryption !== "none" && <span class="badge" title={e.encryption}><Icon name="lock" /> {e.encryption}</span>}
        <time class="muted small" dateTime={e.date ?? e.received_at}>{fullDate(e.date ?? e.received_at)}</time>
      </button>
      {props.expanded && (props.body ? <Body email={props.body} /> : <div class="loading">Loading…</div>)}
    </section>
  );
}

function Body({ email }: { email: EmailDetail }) {
  const [allowRemote, setAllowRemote] = useState(false);
  const [showQuoted, setShowQuoted] = useState(false);
  if (email.html_body) {
    const clean = sanitizeHtml(email.html_body, allowRemote);
    return (
      <div class="message-body" data-testid="message-body">
        {clean.blocked > 0 && !allowRemote && (
          <p class="banner banner-info">
            {clean.blocked} remote image{clean.blocked === 1 ? " was" : "s were"} blocked to protect your privacy.{" "}
            <button type="button" class="link" onClick={() => setAllowRemote(true)} data-testid="remote-content-allow">Show them</button>
          </p>
        )}
        <MailFrame html={foldQuotedHtml(clean.html)} />
        <Attachments email={email} />
      </div>
    );
  }
  const { visible, quoted } = foldQuoted(email.text_body ?? "");
  return (
    <div class="message-body" data-testid="message-body">
      <pre class="text-body">{visible}</pre>
      {quoted && (
        <>
          <button type="button" class="fold" aria-expanded={showQuoted} aria-label="Show the quoted text" onClick={() => setShowQuoted(!showQuoted)}>•••</button>
          {showQuoted && <pre class="text-body quoted">{quoted}</pre>}
        </>
      )}
      <Attachments email={email} />
    </div>
  );
}

/** The sanitised HTML in a sandboxed frame: no scripts, no forms, no top navigation. */
function MailFrame({ html }: { html: string }) {
  const ref = useRef<HTMLIFrameElement>(null);
  const fit = () => {
    const f = ref.current;
    const doc = f?.contentDocument;
    // The body's height, not the page's: that never shrinks below the frame once it grew.
    const h = doc?.body?.scrollHeight ?? doc?.documentElement?.scrollHeight;
    if (f && h !== undefined) f.height = String(Math.min(h + 8, 20000));
  };
  const loaded = () => {
    fit();
    // A folded quote opened or closed (details' toggle does not bubble: capture it).
    ref.current?.contentDocument?.addEventListener("toggle", fit, true);
  };
  return (
    <iframe ref={ref} class="mail-frame" title="Message" sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
      srcdoc={frameDocument(html, mailCss)} onLoad={loaded} referrerpolicy="no-referrer" />
  );
}

function Attachments({ email }: { email: EmailDetail }) {
  const [preview, setPreview] = useState<Attachment | null>(null);
  if (!email.attachments.length) return null;
  return (
    <>
      <ul class="attachments">
        {email.attachments.map((a) => (
          <li key={a.index}>
            <a class="attachment" href={`/api/v1/emails/${email.email_id}/attachments/${a.index}`} download={a.filename ?? undefined}
              onClick={(ev) => { ev.preventDefault(); download(email.email_id, a.index, a.filename ?? `attachment-${a.index}`); }}>
              <Icon name="clip" /> {a.filename ?? `attachment-${a.index}`} <span class="muted small">{formatBytes(a.size)}</span>
            </a>
            {previewKind(a.content_type, a.size) && (
              <button type="button" class="link small" onClick={() => setPreview(a)} data-testid="attachment-preview"
                aria-label={`Preview ${a.filename ?? `attachment ${a.index}`}`}>Preview</button>
            )}
          </li>
        ))}
      </ul>
      {preview && <Preview emailId={email.email_id} attachment={preview} onClose={() => setPreview(null)} />}
    </>
  );
}

/** An attachment shown in the page: an image by a blob URL in an <img> (no script runs in an
 *  image, SVG is not previewed), text as text (never markup), a PDF by Chromium's viewer in a
 *  frame of a blob whose type is forced to PDF. The bytes are fetched with the CSRF header. */
function Preview(p: { emailId: number; attachment: Attachment; onClose: () => void }) {
  const a = p.attachment;
  const kind = previewKind(a.content_type, a.size)!;
  const [url, setUrl] = useState<string | null>(null);
  const [text, setText] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    fetchAttachment(p.emailId, a.index).then(async (blob) => {
      if (kind === "text") setText(previewText(await blob.text()));
      else {
        made = URL.createObjectURL(new Blob([blob], { type: kind === "pdf" ? "application/pdf" : a.content_type }));
        setUrl(made);
      }
    }, (e) => { errorToast(e); p.onClose(); });
    return () => { if (made) URL.revokeObjectURL(made); };
  }, [p.emailId, a.index]);
  const name = a.filename ?? `attachment-${a.index}`;
  return (
    <Modal title={name} onClose={p.onClose}>
      <div class={`preview preview-${kind}`} data-testid="attachment-preview-body" data-kind={kind}>
        {kind === "image" && url && <img src={url} alt={name} />}
        {kind === "pdf" && url && <iframe src={url} title={name} class="preview-pdf" referrerpolicy="no-referrer" />}
        {kind === "text" && text !== null && <pre class="text-body">{text}</pre>}
        {url === null && text === null && <p class="loading">Loading…</p>}
      </div>
      <div class="form-actions">
        <button type="button" onClick={() => download(p.emailId, a.index, name)}>Download</button>
      </div>
    </Modal>
  );
}

async function fetchAttachment(emailId: number, index: number): Promise<Blob> {
  const csrf = decodeURIComponent(document.cookie.split("; ").find((c) => c.startsWith("mr_csrf="))?.slice(8) ?? "");
  const r = await fetch(`/api/v1/emails/${emailId}/attachments/${index}`, { headers: { "X-CSRF-Token": csrf } });
  if (!r.ok) throw new Error(`download failed (${r.status})`);
  return r.blob();
}

/** Attachments need the CSRF header, so they are fetched, then saved from a blob URL. */
async function download(emailId: number, index: number, name: string) {
  try {
    const url = URL.createObjectURL(await fetchAttachment(emailId, index));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (e) {
    errorToast(e);
  }
}
