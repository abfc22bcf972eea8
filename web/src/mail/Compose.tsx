import { useEffect, useRef, useState } from "preact/hooks";
import { api, readCookie } from "../api";
import { formatBytes, splitAddresses } from "../lib";
import { errorToast, toast } from "../ui";
import type { ComposeInit } from "./types";
import { AUTOSAVE_MS, Draft, type DraftFields, type DraftState } from "./draft";
import { linkTarget, outgoingHtml, plainText, textToHtml } from "./richtext";

interface SendResult {
  status: string;
  recipients: { address: string; status: string; reason: string | null }[];
}

interface Contact {
  name: string;
  emails: { address: string }[];
}

interface Upload {
  key: number;
  name: string;
  size: number;
  progress: number; // 0..1
  id: string | null; // "up_..." once stored
  error: string | null;
}

/** POST /uploads with the file as the raw body; XMLHttpRequest, for the progress events. */
function upload(file: File, onProgress: (fraction: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1/uploads?filename=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.setRequestHeader("X-CSRF-Token", readCookie(document.cookie, "mr_csrf") ?? "");
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body: { attachment_id?: string; detail?: string } = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201 && body.attachment_id) resolve(body.attachment_id);
      else reject(new Error(body.detail || `upload failed (${xhr.status})`));
    };
    xhr.onerror = () => reject(new Error("upload failed: the connection broke"));
    xhr.send(file);
  });
}

let uploadKey = 0;

const DRAFT_STATE: Record<DraftState, string> = {
  new: "",
  saving: "Saving…",
  saved: "Draft saved",
  conflict: "Changed in another window: not saved here",
  error: "Draft not saved",
};

interface Identity {
  address: string;
  display_name: string;
}

export function Compose(p: { init: ComposeInit; me: string; onClose: () => void; onSent: () => void }) {
  // Send-as: the caller's own address first, then the identities granted to them.
  const [identities, setIdentities] = useState<Identity[]>([]);
  const [from, setFrom] = useState(""); // "": the caller's own address
  const [fromChosen, setFromChosen] = useState(false);
  // Only a choice made here goes to the server (then always, so that going back to one's own
  // address changes a stored draft's From too).
  const fromAddress = fromChosen ? from || p.me : undefined;
  useEffect(() => {
    api.get<{ items: Identity[] }>("/me/identities", { limit: 100 }).then((r) => setIdentities(r.items), () => setIdentities([]));
  }, []);
  const [to, setTo] = useState(p.init.to ?? "");
  const [cc, setCc] = useState(p.init.cc ?? "");
  const [showCc, setShowCc] = useState(!!p.init.cc);
  const [subject, setSubject] = useState(p.init.subject ?? "");
  const [body, setBody] = useState(p.init.body ?? "");
  const [busy, setBusy] = useState(false);
  const [rich, setRich] = useState(false);
  const [html, setHtml] = useState("");
  const editor = useRef<HTMLDivElement>(null);
  const toggleRich = () => {
    if (!rich) {
      setRich(true);
      setHtml(textToHtml(body));
    } else if (confirm("Drop the formatting and keep the text?")) {
      setRich(false);
    }
  };
  useEffect(() => {
    if (rich && editor.current) {
      editor.current.innerHTML = html; // once, when the editor appears; from then on the user edits it
      editor.current.focus();
    }
  }, [rich]);
  const command = (name: string, value?: string) => {
    editor.current?.focus();
    document.execCommand(name, false, value);
    if (editor.current) {
      setHtml(editor.current.innerHTML);
      setBody(plainText(editor.current));
    }
  };
  const addLink = () => {
    const url = linkTarget(prompt("Link to (https://… or an address)") ?? "");
    if (url) command("createLink", url);
  };
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [dragging, setDragging] = useState(false);
  const addFiles = (files: FileList | null) => {
    for (const file of Array.from(files ?? [])) {
      const key = ++uploadKey;
      const change = (patch: Partial<Upload>) =>
        setUploads((list) => list.map((u) => (u.key === key ? { ...u, ...patch } : u)));
      setUploads((list) => [...list, { key, name: file.name, size: file.size, progress: 0, id: null, error: null }]);
      upload(file, (progress) => change({ progress })).then(
        (id) => change({ id, progress: 1 }),
        (e: Error) => change({ error: e.message }),
      );
    }
  };
  const pending = uploads.some((u) => u.id === null && u.error === null);
  // Contact autocomplete: the caller's contacts as suggestions for the address fields.
  const [known, setKnown] = useState<string[]>([]);
  useEffect(() => {
    api.get<{ items?: Contact[] } | Contact[]>("/contacts", { limit: 500 }).then((r) => {
      const list = Array.isArray(r) ? r : r.items ?? [];
      setKnown(list.flatMap((c) => c.emails.map((e) => (c.name ? `${c.name} <${e.address}>` : e.address))));
    }, () => setKnown([]));
  }, []);
  const suggest = (typed: string) => {
    const parts = typed.split(",");
    const head = parts.slice(0, -1).map((x) => x.trim()).filter(Boolean);
    const last = (parts[parts.length - 1] ?? "").trim().toLowerCase();
    if (!last) return [];
    return known.filter((k) => k.toLowerCase().includes(last)).slice(0, 8).map((k) => [...head, k].join(", "));
  };
  const first = useRef<HTMLInputElement>(null);
  const text = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (p.init.to) {
      text.current?.focus();
      text.current?.setSelectionRange(0, 0);
    } else first.current?.focus();
  }, []);

  // Autosave (mail/draft.ts): a draft a moment after the last edit, then edited in place.
  const fields = (): DraftFields => {
    const f: DraftFields = { to: splitAddresses(to), cc: splitAddresses(cc), subject, body };
    if (fromAddress) f.from_address = fromAddress;
    if (rich) f.html_body = outgoingHtml(html);
    const ids = [...(p.init.attachmentIds ?? []), ...uploads.flatMap((u) => (u.id ? [u.id] : []))];
    if (ids.length) f.attachment_ids = ids;
    return f;
  };
  const [draftState, setDraftState] = useState<DraftState>("new");
  const draft = useRef<Draft | null>(null);
  if (draft.current === null) {
    draft.current = new Draft({
      create: (f) => api.post<SendResult & { email_id: number | null }>("/emails", { ...payload(true), ...f }),
      update: (id, f, version) => api.patch<{ version: number }>(`/emails/${id}`, f, { "If-Match": `"${version}"` }),
    }, setDraftState, fields());
  }
  useEffect(() => {
    if (busy || pending) return;
    const t = setTimeout(() => draft.current?.save(fields()).catch(() => {}), AUTOSAVE_MS);
    return () => clearTimeout(t);
  }, [to, cc, subject, body, html, rich, uploads, busy, pending, from]);

  /** Closing keeps a stored draft up to date (a window never saved stays unsaved). */
  const close = () => {
    if (draft.current?.id != null) draft.current.save(fields()).catch(() => {});
    p.onClose();
  };

  const payload = (draft: boolean) => {
    const m: Record<string, unknown> = { to: splitAddresses(to), cc: splitAddresses(cc), subject, body, draft };
    if (fromAddress) m.from_address = fromAddress;
    if (rich) m.html_body = outgoingHtml(html);
    if (p.init.replyTo) m.reply_to = p.init.replyTo;
    else if (p.init.threadId) m.thread_id = p.init.threadId;
    const ids = [...(p.init.attachmentIds ?? []), ...uploads.flatMap((u) => (u.id ? [u.id] : []))];
    if (ids.length) m.attachment_ids = ids;
    return m;
  };
  const send = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const d = draft.current!;
      let r: SendResult;
      if (d.id !== null && d.state !== "conflict") {
        // The stored draft goes out (and is deleted): bring it up to date first.
        await d.save(fields());
        r = await api.post<SendResult>(`/emails/${d.id}/send`, {}, { "If-Match": `"${d.version}"` });
      } else {
        r = await api.post<SendResult>("/emails", payload(false));
      }
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
      const d = draft.current!;
      if (d.state === "conflict" || (d.id === null && !d.changed(fields()))) await api.post("/emails", payload(true));
      else await d.save(fields());
      toast("Draft saved");
      p.onSent();
    } catch (err) {
      errorToast(err);
    }
  };
  return (
    <form class={`compose card ${dragging ? "dragging" : ""}`} data-testid="compose" onSubmit={send} aria-label="New message"
      onDragOver={(e) => { e.preventDefault(); setDragging(true); }}
      onDragLeave={(e) => { if (e.currentTarget === e.target) setDragging(false); }}
      onDrop={(e) => { e.preventDefault(); setDragging(false); addFiles(e.dataTransfer?.files ?? null); }}
      onKeyDown={(e) => {
        if (e.key === "Escape") close();
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) send(e);
      }}>
      <div class="compose-head">
        <strong>{p.init.threadId ? "Reply" : "New message"}</strong>
        <button type="button" class="icon" aria-label="Close" onClick={close}>×</button>
      </div>
      {identities.length > 0 && (
        <label class="compose-field"><span>From</span>
          <select value={from} onChange={(e) => { setFrom(e.currentTarget.value); setFromChosen(true); }}
            data-testid="compose-from">
            <option value="">{p.me}</option>
            {identities.map((i) => (
              <option key={i.address} value={i.address}>{i.display_name ? `${i.display_name} <${i.address}>` : i.address}</option>
            ))}
          </select>
        </label>
      )}
      <label class="compose-field"><span>To</span>
        <input ref={first} value={to} onInput={(e) => setTo(e.currentTarget.value)} data-testid="compose-to" autocomplete="off"
          list="compose-to-suggestions" />
        <datalist id="compose-to-suggestions">{suggest(to).map((v) => <option key={v} value={v} />)}</datalist>
        {!showCc && <button type="button" class="link" onClick={() => setShowCc(true)}>Cc</button>}
      </label>
      {showCc && <label class="compose-field"><span>Cc</span><input value={cc} onInput={(e) => setCc(e.currentTarget.value)} /></label>}
      <label class="compose-field"><span>Subject</span>
        <input value={subject} onInput={(e) => setSubject(e.currentTarget.value)} data-testid="compose-subject" /></label>
      {!!p.init.attachmentIds?.length && <p class="muted small">{p.init.attachmentIds.length} attachment(s) forwarded</p>}
      <div class="compose-tools" role="toolbar" aria-label="Formatting">
        <button type="button" class="ghost" aria-pressed={rich} onClick={toggleRich} data-testid="compose-rich">Rich text</button>
        {rich && (
          <>
            <button type="button" class="ghost" onMouseDown={(e) => e.preventDefault()} onClick={() => command("bold")} aria-label="Bold" data-testid="compose-bold"><b>B</b></button>
            <button type="button" class="ghost" onMouseDown={(e) => e.preventDefault()} onClick={() => command("italic")} aria-label="Italic"><i>I</i></button>
            <button type="button" class="ghost" onMouseDown={(e) => e.preventDefault()} onClick={() => command("insertUnorderedList")} aria-label="Bulleted list">• List</button>
            <button type="button" class="ghost" onMouseDown={(e) => e.preventDefault()} onClick={addLink} aria-label="Link" data-testid="compose-link">Link</button>
          </>
        )}
      </div>
      {rich ? (
        <div ref={editor} class="compose-editor" contentEditable role="textbox" aria-multiline="true" aria-label="Message"
          data-testid="compose-editor"
          onInput={(e) => { setHtml(e.currentTarget.innerHTML); setBody(plainText(e.currentTarget)); }} />
      ) : (
        <textarea ref={text} value={body} onInput={(e) => setBody(e.currentTarget.value)} rows={12} aria-label="Message"
          data-testid="compose-body" />
      )}
      {uploads.length > 0 && (
        <ul class="uploads">
          {uploads.map((u) => (
            <li key={u.key} class={u.error ? "upload-error" : ""} data-testid="compose-upload">
              <span class="upload-name">{u.name}</span>
              <span class="muted small">{formatBytes(u.size)}</span>
              {u.error ? <span class="small">{u.error}</span>
                : <progress max={1} value={u.progress} aria-label={`Uploading ${u.name}`} />}
              <button type="button" class="icon" aria-label={`Remove ${u.name}`}
                onClick={() => setUploads((list) => list.filter((x) => x.key !== u.key))}>×</button>
            </li>
          ))}
        </ul>
      )}
      <div class="compose-actions">
        <button type="submit" class="primary" disabled={busy || pending} data-testid="compose-send">{busy ? "Sending…" : pending ? "Uploading…" : "Send"}</button>
        <label class="button ghost attach" title="Attach files (or drop them here)">
          Attach<input type="file" multiple class="sr-only" data-testid="compose-attach"
            onChange={(e) => { addFiles(e.currentTarget.files); e.currentTarget.value = ""; }} />
        </label>
        <button type="button" class="ghost" onClick={saveDraft}>Save draft</button>
        <span class="spacer" />
        <span class="muted small" role="status" data-testid="compose-draft-status" data-state={draftState}>{DRAFT_STATE[draftState]}</span>
        <span class="muted small">Ctrl+Enter sends</span>
      </div>
    </form>
  );
}
