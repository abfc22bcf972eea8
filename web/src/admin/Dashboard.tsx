import { useEffect, useState } from "preact/hooks";
import { api, type Page } from "../api";
import { fullDate } from "../lib";
import type { PageProps } from "./AdminApp";
import type { AuditEntry } from "./Audit";

interface Counts {
  domains: number | null;
  users: number | null;
  aliases: number | null;
  queue: number | null;
}

async function total(path: string, query: Record<string, string> = {}): Promise<number | null> {
  try {
    return (await api.get<Page<unknown>>(path, { ...query, limit: 1 })).total;
  } catch {
    return null;
  }
}

interface UsageRow {
  period: string;
  method?: string | null;
  calls: number;
  errors: number;
  duration_ms_avg?: number;
}

export function Dashboard({ who }: PageProps) {
  const [counts, setCounts] = useState<Counts>({ domains: null, users: null, aliases: null, queue: null });
  const [recent, setRecent] = useState<AuditEntry[]>([]);
  const [usage, setUsage] = useState<UsageRow[]>([]);
  const [methods, setMethods] = useState<UsageRow[]>([]);
  useEffect(() => {
    (async () => {
      const [domains, users, aliases, queue] = await Promise.all([
        total("/domains"),
        total("/users"),
        total("/aliases"),
        who.is_admin ? total("/queue", { status: "queued" }) : Promise.resolve(null),
      ]);
      setCounts({ domains, users, aliases, queue });
    })();
    api.get<Page<AuditEntry>>("/audit", { limit: 8 }).then((p) => setRecent(p.items), () => setRecent([]));
    const from = new Date(Date.now() - 13 * 86400_000).toISOString().slice(0, 10);
    api
      .get<{ rows: UsageRow[] }>("/usage", { from, granularity: "day" })
      .then((r) => setUsage(r.rows), () => setUsage([]));
    api
      .get<{ rows: UsageRow[] }>("/usage", { from, granularity: "month", group_by: "method" })
      .then((r) => setMethods(topMethods(r.rows)), () => setMethods([]));
  }, []);
  const cards: [string, number | null, string][] = [
    ["Domains", counts.domains, "#/domains"],
    ["Users", counts.users, "#/users"],
    ["Aliases", counts.aliases, "#/aliases"],
  ];
  if (who.is_admin) cards.push(["Queued mail", counts.queue, "#/queue"]);
  return (
    <section>
      <h1>Dashboard</h1>
      <div class="stats">
        {cards.map(([label, n, href]) => (
          <a class="card stat" href={href} key={label}>
            <span class="stat-n">{n ?? "…"}</span>
            <span class="stat-label">{label}</span>
          </a>
        ))}
      </div>
      <div class="grid-2">
        <div class="card">
          <h2>API calls, last 14 days</h2>
          <Sparkline rows={usage} />
        </div>
        <div class="card">
          <h2>Busiest methods, last 14 days</h2>
          <MethodBars rows={methods} />
        </div>
        <div class="card">
          <h2>Recent changes</h2>
          {recent.length === 0 ? (
            <p class="muted">Nothing yet.</p>
          ) : (
            <ul class="plain-list">
              {recent.map((e) => (
                <li key={e.id}>
                  <code>{e.method}</code> <strong>{e.target ?? e.object}</strong>
                  <span class="muted"> by {e.principal}, {fullDate(e.at)}</span>
                </li>
              ))}
            </ul>
          )}
          <a href="#/audit">The whole audit log →</a>
        </div>
      </div>
    </section>
  );
}

/** Calls per day as bars (SVG attributes, no inline style). */
export function Sparkline({ rows }: { rows: UsageRow[] }) {
  const byDay = new Map<string, number>();
  for (const r of rows) byDay.set(r.period.slice(0, 10), (byDay.get(r.period.slice(0, 10)) ?? 0) + r.calls);
  const days: [string, number][] = [];
  for (let i = 13; i >= 0; i--) {
    const d = new Date(Date.now() - i * 86400_000).toISOString().slice(0, 10);
    days.push([d, byDay.get(d) ?? 0]);
  }
  const max = Math.max(1, ...days.map(([, n]) => n));
  const total = days.reduce((a, [, n]) => a + n, 0);
  return (
    <figure class="spark">
      <svg viewBox="0 0 280 60" role="img" aria-label={`${total} calls in 14 days`}>
        {days.map(([d, n], i) => {
          const h = Math.max(1, Math.round((n / max) * 56));
          return (
            <rect key={d} x={i * 20 + 2} y={60 - h} width="16" height={h} rx="2" class="spark-bar">
              <title>{`${d}: ${n} calls`}</title>
            </rect>
          );
        })}
      </svg>
      <figcaption class="muted">{total} calls</figcaption>
    </figure>
  );
}

/** Calls per method summed over the periods, busiest first (at most 8). */
export function topMethods(rows: UsageRow[]): UsageRow[] {
  const by = new Map<string, UsageRow>();
  for (const r of rows) {
    const name = r.method ?? "?";
    const seen = by.get(name);
    by.set(name, seen ? { ...seen, calls: seen.calls + r.calls, errors: seen.errors + r.errors } : { ...r, method: name });
  }
  return [...by.values()].sort((a, b) => b.calls - a.calls).slice(0, 8);
}

function MethodBars({ rows }: { rows: UsageRow[] }) {
  if (!rows.length) return <p class="muted">No calls yet.</p>;
  const max = Math.max(1, ...rows.map((r) => r.calls));
  return (
    <ul class="method-bars">
      {rows.map((r) => (
        <li key={r.method ?? "?"}>
          <code>{r.method}</code>
          <meter min={0} max={max} value={r.calls} aria-label={`${r.method}: ${r.calls} calls`} />
          <span class="small">{r.calls}{r.errors ? <span class="muted"> ({r.errors} errors)</span> : null}</span>
        </li>
      ))}
    </ul>
  );
}
