import { useEffect, useState } from "preact/hooks";
import { api, withQuery } from "../api";
import { fullDate } from "../lib";
import { errorToast, toast } from "../ui";

interface TotpStatus {
  enabled: boolean;
  pending: boolean;
  confirmed_at: string | null;
  recovery_codes_left: number;
}

interface TotpSetup {
  secret: string;
  otpauth_uri: string;
  qr_svg: string;
}

interface AppPassword {
  id: string;
  name: string;
  protocols: string[];
  created_at: string;
  last_used_at: string | null;
  last_ip: string | null;
}

export const APP_PROTOCOLS = ["smtp", "imap", "pop3", "jmap", "dav"] as const;

/** The QR code SVG the API answers, as an image URL (img-src admits data:, no inline markup). */
export function svgDataUrl(svg: string): string {
  return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
}

/** A base32 secret in groups of four, easier to type into an app. */
export function groupSecret(secret: string): string {
  return (secret.replace(/\s+/g, "").match(/.{1,4}/g) ?? []).join(" ");
}

/** Second factor (TOTP) and app passwords: the caller's own credentials. */
export function Security() {
  const [status, setStatus] = useState<TotpStatus | null>(null);
  const [setup, setSetup] = useState<TotpSetup | null>(null);
  const [code, setCode] = useState("");
  const [offCode, setOffCode] = useState("");
  const [recovery, setRecovery] = useState<string[] | null>(null);
  const [apps, setApps] = useState<AppPassword[]>([]);
  const [appName, setAppName] = useState("");
  const [appProtocols, setAppProtocols] = useState<string[]>(["smtp", "imap"]);
  const [issued, setIssued] = useState<{ name: string; password: string } | null>(null);
  const loadStatus = () => api.get<TotpStatus>("/me/totp").then(setStatus, errorToast);
  const loadApps = () => api.get<AppPassword[]>("/me/app-passwords").then(setApps, errorToast);
  useEffect(() => {
    loadStatus();
    loadApps();
  }, []);

  const start = async () => {
    try {
      setSetup(await api.post<TotpSetup>("/me/totp"));
      setRecovery(null);
    } catch (err) {
      errorToast(err);
    }
  };
  const confirm = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await api.post<{ recovery_codes: string[] }>("/me/totp/confirm", { code: code.trim() });
      setRecovery(r.recovery_codes);
      setSetup(null);
      setCode("");
      toast("Two-step sign-in is on");
      loadStatus();
    } catch (err) {
      errorToast(err);
    }
  };
  const turnOff = async (e: Event) => {
    e.preventDefault();
    try {
      await api.del(withQuery("/me/totp", { otp: offCode.trim() })); // DELETE takes its parameters in the query
      setOffCode("");
      setRecovery(null);
      toast("Two-step sign-in is off");
      loadStatus();
    } catch (err) {
      errorToast(err);
    }
  };
  const createApp = async (e: Event) => {
    e.preventDefault();
    try {
      const r = await api.post<AppPassword & { password: string }>("/me/app-passwords", { name: appName.trim(), protocols: appProtocols });
      setIssued({ name: r.name, password: r.password });
      setAppName("");
      loadApps();
    } catch (err) {
      errorToast(err);
    }
  };
  const revoke = async (a: AppPassword) => {
    try {
      await api.del(`/me/app-passwords/${encodeURIComponent(a.id)}`);
      toast(`Revoked ${a.name}`);
      if (issued?.name === a.name) setIssued(null);
      loadApps();
    } catch (err) {
      errorToast(err);
    }
  };

  return (
    <section data-testid="security">
      <h3>Two-step sign-in</h3>
      {status === null ? <p>Loading…</p> : status.enabled ? (
        <>
          <p data-testid="totp-status">
            On since {status.confirmed_at ? fullDate(status.confirmed_at) : "—"}; {status.recovery_codes_left} recovery
            code(s) left. Mail clients sign in with app passwords.
          </p>
          <form class="inline-form" onSubmit={turnOff}>
            <label>Code to turn it off<input value={offCode} autocomplete="one-time-code" required maxLength={64}
              onInput={(e) => setOffCode(e.currentTarget.value)} data-testid="totp-off-code" /></label>
            <button type="submit" class="danger" data-testid="totp-off">Turn off</button>
          </form>
        </>
      ) : setup ? (
        <form class="totp-setup" onSubmit={confirm} data-testid="totp-setup">
          <p>Scan this with your authenticator app, or type the key, then enter the code it shows.</p>
          <img class="qr" src={svgDataUrl(setup.qr_svg)} alt="QR code of the two-step sign-in key" data-testid="totp-qr" />
          <p>Key: <code data-testid="totp-secret">{groupSecret(setup.secret)}</code></p>
          <div class="inline-form">
            <label>Code<input value={code} inputMode="numeric" autocomplete="one-time-code" required maxLength={10}
              onInput={(e) => setCode(e.currentTarget.value)} data-testid="totp-code" /></label>
            <button type="submit" class="primary" data-testid="totp-confirm">Turn on</button>
            <button type="button" onClick={() => setSetup(null)}>Cancel</button>
          </div>
        </form>
      ) : (
        <p>
          Off: your password alone signs you in.{" "}
          <button type="button" onClick={start} data-testid="totp-start">Set up</button>
        </p>
      )}
      {recovery && (
        <div class="secret-once" data-testid="totp-recovery">
          <p><strong>Recovery codes</strong> — shown this once. Keep them safe; each signs you in once without the app.</p>
          <ul class="codes">{recovery.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
          <button type="button" onClick={() => setRecovery(null)}>I have saved them</button>
        </div>
      )}

      <h3>App passwords</h3>
      <p class="muted small">For mail clients (SMTP, IMAP, POP3, JMAP, DAV); each works only on the protocols ticked.</p>
      <form class="inline-form" onSubmit={createApp}>
        <label>Name<input value={appName} required maxLength={100} placeholder="Thunderbird at home"
          onInput={(e) => setAppName(e.currentTarget.value)} data-testid="apppw-name" /></label>
        <fieldset class="checks">
          <legend>Protocols</legend>
          {APP_PROTOCOLS.map((p) => (
            <label class="check" key={p}>
              <input type="checkbox" checked={appProtocols.includes(p)}
                onChange={(e) => setAppProtocols(e.currentTarget.checked ? [...appProtocols, p] : appProtocols.filter((x) => x !== p))} />
              {p.toUpperCase()}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={appProtocols.length === 0} data-testid="apppw-create">Create</button>
      </form>
      {issued && (
        <div class="secret-once" data-testid="apppw-secret">
          <p>The password for <strong>{issued.name}</strong> — shown this once:</p>
          <code class="secret">{issued.password}</code>
          <button type="button" onClick={() => setIssued(null)}>Done</button>
        </div>
      )}
      <table>
        <tbody>
          {apps.map((a) => (
            <tr key={a.id} data-testid="apppw-row" data-name={a.name}>
              <td>{a.name}<div class="muted small">{a.protocols.join(", ")}</div></td>
              <td class="small">created {fullDate(a.created_at)}
                <div class="muted">{a.last_used_at ? `last used ${fullDate(a.last_used_at)}${a.last_ip ? " from " + a.last_ip : ""}` : "never used"}</div></td>
              <td class="actions"><button type="button" class="danger" onClick={() => revoke(a)}>Revoke</button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
