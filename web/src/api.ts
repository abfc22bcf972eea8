// The one way the app talks to the server: fetch on this origin, the session in an HttpOnly
// cookie, the CSRF value (readable cookie mr_csrf) echoed in X-CSRF-Token on every call.

export interface Problem {
  status: number;
  code: string;
  title?: string;
  detail?: string;
  // The server names a bad field by its dotted path, `loc` (docs/api.md, "Errors").
  errors?: { loc?: string; field?: string; message: string }[];
}

export class ApiError extends Error {
  status: number;
  code: string;
  problem: Problem;
  constructor(problem: Problem) {
    super(problemMessage(problem));
    this.status = problem.status;
    this.code = problem.code;
    this.problem = problem;
  }
}

export function problemMessage(p: Problem): string {
  const head = p.detail || p.title || p.code;
  const fields = (p.errors ?? [])
    .map((e) => ((e.loc ?? e.field) ? `${e.loc ?? e.field}: ${e.message}` : e.message))
    .filter((text) => !head.includes(text)) // the detail already says the first one
    .join("; ");
  return [head, fields].filter(Boolean).join(" — ");
}

export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return null;
}

function csrf(): string | null {
  return readCookie(document.cookie, "mr_csrf");
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function request<T>(method: string, url: string, body?: unknown, extra?: Record<string, string>): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...extra };
  const token = csrf();
  if (token) headers["X-CSRF-Token"] = token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (r.status === 204) return undefined as T;
  const text = await r.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!r.ok) {
    throw new ApiError(
      data && typeof data === "object" ? { status: r.status, code: "error", ...data } : { status: r.status, code: "http_" + r.status },
    );
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query?: Query) => request<T>("GET", withQuery("/api/v1" + path, query)),
  post: <T>(path: string, body?: unknown, headers?: Record<string, string>) => request<T>("POST", "/api/v1" + path, body ?? {}, headers),
  patch: <T>(path: string, body: unknown, headers?: Record<string, string>) => request<T>("PATCH", "/api/v1" + path, body, headers),
  put: <T>(path: string, body: unknown) => request<T>("PUT", "/api/v1" + path, body),
  del: <T>(path: string) => request<T>("DELETE", "/api/v1" + path),
};

export interface Who {
  email: string | null;
  kind: string;
  is_admin: boolean;
  managed_domains: string[];
  key_id: string | null;
}

export const session = {
  current: () => request<Who | undefined>("GET", "/web/session"),
  login: (body: { username: string; password: string; otp?: string } | { api_key: string }) =>
    request<Who & { csrf_token: string }>("POST", "/web/session", body),
  logout: () => request<void>("DELETE", "/web/session"),
  /** The OpenID Connect provider, when the server has one (204: none). */
  oidc: () => request<{ name: string; login_url: string } | undefined>("GET", "/web/oidc"),
};

export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}
