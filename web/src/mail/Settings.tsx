import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { fullDate, type NotificationPrefs } from "../lib";
import { errorToast, Modal, toast } from "../ui";
import { Security } from "./Security";

export interface ClientSettings {
  display_name: string;
  signature: string;
  reply: { enabled: boolean; subject: string; body: string; start: string | null; end: string | null };
  forward: { enabled: boolean; destinations: string[]; keep: boolean };
  spam: { enabled: boolean; threshold: number; mark_as_read: boolean };
  notifications: NotificationPrefs;
}

interface Session {
  id: string;
  user_agent: string;
  client_ip: string | null;
  created_at: string;
  last_used_at: string;
  current: boolean;
}

/** The caller's settings (PATCH /me/settings), sessions and password. */
export function Settings(props: { onClose: () => void; onSaved: (s: ClientSettings) => void }) {
  const [s, setS] = useState<ClientSettings | null>(null);
  const [destinations, setDestinations] = useState("");
  const [sessions, setSessions] = useState<Session[]>([]);
  const [pw, setPw] = useState({ current: "", next: "" });
  const [desktopTicked, setDesktopTicked] = useState(false); // ticked in this dialog: ask the browser
  const loadSessions = () => api.get<Session[]>("/me/sessions").then(setSessions, errorToast);
  useEffect(() => {
    api.get<ClientSettings>("/me/settings").then((v) => {
      setS(v);
      setDestinations(v.forward.destinations.join(", "));
    }, errorToast);
    loadSessions();
  }, []);
  if (!s) return <Modal title="Settings" onClose={props.onClose}><p>Loading…</p></Modal>;
  const set = <K extends keyof ClientSettings>(k: K, v: ClientSettings[K]) => setS({ ...s, [k]: v });
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const body = {
        display_name: s.display_name,
        signature: s.signature,
        reply: { ...s.reply, start: s.reply.start || null, end: s.reply.end || null },
        forward: { ...s.forward, destinations: destinations.split(/[,\s]+/).filter(Boolean) },
        spam: s.spam,
        notifications: s.notifications,
      };
      // System notifications need the browser's permission, asked for while the click is fresh.
      if (desktopTicked && s.notifications.new_mail && s.notifications.desktop && typeof Notification !== "undefined"
        && Notification.permission === "default") {
        await Notification.requestPermission();
      }
      const saved = await api.patch<ClientSettings>("/me/settings", body);
      toast("Settings saved");
      props.onSaved(saved);
      props.onClose();
    } catch (err) {
      errorToast(err);
    }
  };
  const changePassword = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await api.put<{ revoked_sessions: number }>("/me/password", { current_password: pw.current, new_password: pw.next });
      toast(`Password changed; ${r.revoked_sessions} other session(s) ended`);
      setPw({ current: "", next: "" });
      loadSessions();
    } catch (err) {
      errorToast(err);
    }
  };
  return (
    <Modal title="Settings" onClose={props.onClose}>
      <form class="form-grid" onSubmit={save} data-testid="settings">
        <label>Your name<input value={s.display_name} onInput={(e) => set("display_name", e.currentTarget.value)} /></label>
        <label>Spam threshold<input type="number" step="0.5" value={s.spam.threshold}
          onInput={(e) => set("spam", { ...s.spam, threshold: Number(e.currentTarget.value) })} /></label>
        <label class="wide">Signature<textarea rows={3} value={s.signature} onInput={(e) => set("signature", e.currentTarget.value)}
          data-testid="settings-signature" /></label>
        <fieldset class="wide">
          <legend><label class="check"><input type="checkbox" checked={s.reply.enabled}
            onChange={(e) => set("reply", { ...s.reply, enabled: e.currentTarget.checked })} data-testid="settings-vacation" />Vacation reply</label></legend>
          <label>Subject<input value={s.reply.subject} onInput={(e) => set("reply", { ...s.reply, subject: e.currentTarget.value })} /></label>
          <label>Message<textarea rows={3} value={s.reply.body} onInput={(e) => set("reply", { ...s.reply, body: e.currentTarget.value })} /></label>
          <div class="inline-form">
            <label>From<input type="date" value={s.reply.start ?? ""} onInput={(e) => set("reply", { ...s.reply, start: e.currentTarget.value })} /></label>
            <label>Until<input type="date" value={s.reply.end ?? ""} onInput={(e) => set("reply", { ...s.reply, end: e.currentTarget.value })} /></label>
          </div>
        </fieldset>
        <fieldset class="wide">
          <legend><label class="check"><input type="checkbox" checked={s.forward.enabled}
            onChange={(e) => set("forward", { ...s.forward, enabled: e.currentTarget.checked })} />Forward my mail</label></legend>
          <label>To<input value={destinations} onInput={(e) => setDestinations(e.currentTarget.value)} placeholder="me@elsewhere.example" /></label>
          <label class="check"><input type="checkbox" checked={s.forward.keep}
            onChange={(e) => set("forward", { ...s.forward, keep: e.currentTarget.checked })} />Keep a copy here</label>
        </fieldset>
        <fieldset class="wide" data-testid="settings-notifications">
          <legend><label class="check"><input type="checkbox" checked={s.notifications.new_mail} data-testid="settings-notify"
            onChange={(e) => set("notifications", { ...s.notifications, new_mail: e.currentTarget.checked })} />Tell me about new mail</label></legend>
          <label class="check"><input type="checkbox" checked={s.notifications.desktop} disabled={!s.notifications.new_mail}
            data-testid="settings-notify-desktop"
            onChange={(e) => {
              set("notifications", { ...s.notifications, desktop: e.currentTarget.checked });
              setDesktopTicked(e.currentTarget.checked);
            }} />
            As a system notification when this page is not in view{typeof Notification !== "undefined" && Notification.permission === "denied" ? " (the browser refuses: allow it in its site settings)" : ""}</label>
        </fieldset>
        <div class="form-actions"><button type="submit" class="primary" data-testid="settings-save">Save settings</button></div>
      </form>
      <h3>Password</h3>
      <form class="inline-form" onSubmit={changePassword}>
        <label>Current<input type="password" autocomplete="current-password" value={pw.current} required
          onInput={(e) => setPw({ ...pw, current: e.currentTarget.value })} /></label>
        <label>New<input type="password" autocomplete="new-password" minLength={8} value={pw.next} required
          onInput={(e) => setPw({ ...pw, next: e.currentTarget.value })} /></label>
        <button type="submit">Change password</button>
      </form>
      <h3>Sessions</h3>
      <table>
        <tbody>
          {sessions.map((x) => (
            <tr key={x.id}>
              <td class="small">{x.user_agent || "unknown client"}<div class="muted">{x.client_ip ?? ""}</div></td>
              <td class="small">since {fullDate(x.created_at)}<div class="muted">last used {fullDate(x.last_used_at)}</div></td>
              <td class="actions">{x.current ? <span class="badge badge-ok">this one</span> : (
                <button type="button" class="danger" onClick={async () => {
                  try { await api.del(`/me/sessions/${x.id}`); loadSessions(); } catch (err) { errorToast(err); }
                }}>End</button>
              )}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Security />
    </Modal>
  );
}
