import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { splitAddresses } from "../lib";
import { errorToast, toast } from "../ui";
import type { ComposeInit } from "./types";

interface SendResult {
  status: string;
  recipients: { address: string; status: string; reason: string | null }[];
}

export function Compose(p: { init: ComposeInit; onClose: () => void; onSent: () => void }) {
  const [to, setTo] = useState(p.init.to ?? "");
  const [cc, setCc] = useState(p.init.cc ?? "");
  const [showCc, setShowCc] = useState(!!p.init.cc);
  const [subject, setSubject] = useState(p.init.subject ?? "");
  const [body, setBody] = useState(p.init.body ?? "");
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  const text = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (p.init.to) {
      text.current?.focus();
      text.current?.setSelectionRange(0, 0);
    } else first.current?.focus();
  }, []);

  const payload = (draft: boolean) => {
    const m: Record<string, unknown> = { to: splitAddresses(to), cc: splitAddresses(cc), subject, body, draft };
    if (p.init.replyTo) m.reply_to = p.init.replyTo;
    else if (p.init.threadId) m.thread_id = p.init.threadId;
    if (p.init.attachmentIds?.length) m.attachment_ids = p.init.attachmentIds;
    return m;
  };
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api.post<SendResult>("/emails", payload(false));
      const refused = r.recipients.filter((x) => x.status === "error");
      if (r.status === "failed") toast(`Not sent: ${refused.map((x) => `${x.address} (${x.reason})`).join(", ")}`, "error");
      else if (refused.length) toast(`Sent, but refused for ${refused.map((x) => x.address).join(", ")}`, "error");
      else toast("Message sent");
      if (r.status !== "failed") p.onSent();
    } catch (err) {
      errorToast(err);
    } finally {
      setBusy(false);
    }
  };
  const saveDraft = async () => {
    try {
      await api.post("/emails", payload(true));
      toast("Draft saved");
      p.onSent();
    } catch (err) {
      errorToast(err);
    }
  };
  return (
    <form class="compose card" data-testid="compose" onSubmit={send} aria-label="New message"
      onKeyDown={(e) => {
        if (e.key === "Escape") p.onClose();
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
      }}>
      <div class="compose-head">
        <strong>{p.init.threadId ? "Reply" : "New message"}</strong>
        <button type="button" class="icon" aria-label="Close" onClick={p.onClose}>×</button>
      </div>
      <label class="compose-field"><span>To</span>
        <input ref={first} value={to} onInput={(e) => setTo(e.currentTarget.value)} data-testid="compose-to" autocomplete="email" multiple />
        {!showCc && <button type="button" class="link" onClick={() => setShowCc(true)}>Cc</button>}
      </label>
      {showCc && <label class="compose-field"><span>Cc</span><input value={cc} onInput={(e) => setCc(e.currentTarget.value)} /></label>}
      <label class="compose-field"><span>Subject</span>
        <input value={subject} onInput={(e) => setSubject(e.currentTarget.value)} data-testid="compose-subject" /></label>
      {!!p.init.attachmentIds?.length && <p class="muted small">{p.init.attachmentIds.length} attachment(s) forwarded</p>}
      <textarea ref={text} value={body} onInput={(e) => setBody(e.currentTarget.value)} rows={12} aria-label="Message"
        data-testid="compose-body" />
      <div class="compose-actions">
        <button type="submit" class="primary" disabled={busy} data-testid="compose-send">{busy ? "Sending…" : "Send"}</button>
        <button type="button" class="ghost" onClick={saveDraft}>Save draft</button>
        <span class="spacer" />
        <span class="muted small">Ctrl+Enter sends</span>
      </div>
    </form>
  );
}
