import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, session, type Who } from "./api";
import { pageLabel } from "./lib";

// -- toasts -------------------------------------------------------------------------------

type Toast = { id: number; text: string; kind: "info" | "error" };
let toasts: Toast[] = [];
let nextToast = 1;
const listeners = new Set<(t: Toast[]) => void>();

export function toast(text: string, kind: "info" | "error" = "info"): void {
  const t = { id: nextToast++, text, kind };
  toasts = [...toasts, t];
  listeners.forEach((l) => l(toasts));
  setTimeout(() => {
    toasts = toasts.filter((x) => x.id !== t.id);
    listeners.forEach((l) => l(toasts));
  }, kind === "error" ? 8000 : 4000);
}

export function errorToast(e: unknown): void {
  toast(e instanceof Error ? e.message : String(e), "error");
}

export function Toasts() {
  const [list, setList] = useState<Toast[]>(toasts);
  useEffect(() => {
    listeners.add(setList);
    return () => void listeners.delete(setList);
  }, []);
  return (
    <div class="toasts" role="status" aria-live="polite">
      {list.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`} data-testid="toast">
          {t.text}
        </div>
      ))}
    </div>
  );
}

// -- login ----------------------------------------------------------------------------------

export function Login(props: { title: string; allowKey?: boolean; onLogin: (who: Who) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [useKey, setUseKey] = useState(false);
  const [otp, setOtp] = useState("");
  const [askOtp, setAskOtp] = useState(false);
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const [provider, setProvider] = useState<{ name: string; login_url: string }>();
  useEffect(() => {
    session.oidc().then(setProvider, () => undefined);
  }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      const who = await session.login(useKey ? { api_key: apiKey.trim() } : loginBody(username, password, askOtp ? otp : ""));
      props.onLogin(who);
    } catch (err) {
      if (err instanceof ApiError && err.code === "otp_required") {
        setAskOtp(true); // the password was right: the account has a second factor
        setError(askOtp ? "Enter the code from your authenticator app." : "");
      } else {
        setError(loginError(err, askOtp));
        setOtp("");
      }
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="card login-card" onSubmit={submit}>
        <div class="brand brand-big">
          <span class="logo" aria-hidden="true">✉</span> mailroom
        </div>
        <h1>{props.title}</h1>
        {useKey ? (
          <label>
            API key
            <input type="password" autocomplete="off" value={apiKey} data-testid="login-apikey"
              onInput={(e) => setApiKey(e.currentTarget.value)} placeholder="mr_…" required />
          </label>
        ) : (
          <>
            <label>
              Address or user name
              <input type="text" autocomplete="username" value={username} data-testid="login-username"
                onInput={(e) => setUsername(e.currentTarget.value)} required autofocus />
            </label>
            <label>
              Password
              <input type="password" autocomplete="current-password" value={password} data-testid="login-password"
                onInput={(e) => setPassword(e.currentTarget.value)} required />
            </label>
            {askOtp && (
              <label>
                One-time code (or a recovery code)
                <input type="text" autocomplete="one-time-code" inputMode="numeric" value={otp} data-testid="login-otp"
                  onInput={(e) => setOtp(e.currentTarget.value)} required autofocus maxLength={64} />
              </label>
            )}
          </>
        )}
        {error && (
          <p class="form-error" role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy} data-testid="login-submit">
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {provider && (
          <a class="button" data-testid="login-oidc"
            href={`${provider.login_url}?next=${location.pathname.startsWith("/admin") ? "/admin" : "/"}`}>
            Sign in with {provider.name}
          </a>
        )}
        {props.allowKey && (
          <button type="button" class="link" onClick={() => setUseKey(!useKey)} data-testid="login-toggle-key">
            {useKey ? "Sign in with a password" : "Sign in with an API key"}
          </button>
        )}
      </form>
    </main>
  );
}

/** The login body: the one-time code only once the server asked for it. */
export function loginBody(username: string, password: string, otp: string): { username: string; password: string; otp?: string } {
  const code = otp.trim();
  return code ? { username, password, otp: code } : { username, password };
}

/** What a failed login says: a 401 never tells which of name, password or code was wrong. */
export function loginError(err: unknown, withCode: boolean): string {
  if (err instanceof ApiError && err.status === 401) return withCode ? "Wrong name, password or code." : "Wrong name or password.";
  return err instanceof Error ? err.message : String(err);
}

// -- session boot ------------------------------------------------------------------------------

/** Who the cookie stands for (null: log in), checked once on load. */
export function useSession(): [Who | null | undefined, (w: Who | null) => void] {
  const [who, setWho] = useState<Who | null | undefined>(undefined);
  useEffect(() => {
    session.current().then((w) => setWho(w ?? null), () => setWho(null));
  }, []);
  return [who, setWho];
}

// -- small pieces ------------------------------------------------------------------------------

export function Pager(props: { offset: number; limit: number; count: number; total: number; onPage: (offset: number) => void }) {
  const { offset, limit, count, total } = props;
  return (
    <div class="pager">
      <span class="muted">{pageLabel(offset, count, total)}</span>
      <button type="button" class="icon" aria-label="Previous page" disabled={offset === 0}
        onClick={() => props.onPage(Math.max(0, offset - limit))}>‹</button>
      <button type="button" class="icon" aria-label="Next page" disabled={offset + count >= total}
        onClick={() => props.onPage(offset + limit)}>›</button>
    </div>
  );
}

export function Empty(props: { children: ComponentChildren }) {
  return <div class="empty">{props.children}</div>;
}

/**
 * A window keydown listener, added once, that runs the handler of the latest render. An effect
 * re-added after every render leaves the previous handler in place until it runs (after paint),
 * so a quick key could act on what was shown before.
 */
export function useKeydown(handler: (e: KeyboardEvent) => void, capture = false): void {
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => {
    const listener = (e: KeyboardEvent) => latest.current(e);
    window.addEventListener("keydown", listener, capture);
    return () => window.removeEventListener("keydown", listener, capture);
  }, [capture]);
}

export function Modal(props: { title: string; onClose: () => void; children: ComponentChildren }) {
  useKeydown((e) => e.key === "Escape" && props.onClose());
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class="modal card" role="dialog" aria-modal="true" aria-label={props.title}>
        <div class="modal-head">
          <h2>{props.title}</h2>
          <button type="button" class="icon" aria-label="Close" onClick={props.onClose}>×</button>
        </div>
        {props.children}
      </div>
    </div>
  );
}

/** A hash route: "#/users?domain=x" → ["users", {domain: "x"}]. */
export function useHashRoute(): [string, URLSearchParams] {
  const parse = (): [string, URLSearchParams] => {
    const raw = location.hash.replace(/^#\/?/, "");
    const [path, qs] = raw.split("?");
    return [path || "", new URLSearchParams(qs || "")];
  };
  const [route, setRoute] = useState(parse);
  useEffect(() => {
    const on = () => setRoute(parse());
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export async function copyText(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied");
  } catch {
    toast("Copy failed: select the text and copy it by hand", "error");
  }
}
