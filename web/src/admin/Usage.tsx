import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { errorToast } from "../ui";
import type { PageProps } from "./AdminApp";

export interface UsageRow {
  period: string;
  method?: string | null;
  calls: number;
  errors: number;
  duration_ms_total?: number;
}

export interface MethodSeries {
  method: string;
  calls: number;
  errors: number;
  avg_ms: number;
  perDay: number[];
}

/** The UTC days from `days - 1` days before `now` to `now`, as YYYY-MM-DD. */
export function lastDays(days: number, now = new Date()): string[] {
  const out: string[] = [];
  for (let i = days - 1; i >= 0; i--) out.push(new Date(now.getTime() - i * 86400_000).toISOString().slice(0, 10));
  return out;
}

/** Rows grouped by method and day into one series per method (calls per day), busiest first. */
export function usageByMethod(rows: UsageRow[], days: string[]): MethodSeries[] {
  const index = new Map(days.map((d, i) => [d, i]));
  const by = new Map<string, MethodSeries & { ms: number }>();
  for (const r of rows) {
    const name = r.method ?? "?";
    let s = by.get(name);
    if (!s) by.set(name, (s = { method: name, calls: 0, errors: 0, avg_ms: 0, ms: 0, perDay: days.map(() => 0) }));
    s.calls += r.calls;
    s.errors += r.errors;
    s.ms += r.duration_ms_total ?? 0;
    const i = index.get(r.period.slice(0, 10));
    if (i !== undefined) s.perDay[i] += r.calls;
  }
  return [...by.values()]
    .map(({ ms, ...s }) => ({ ...s, avg_ms: s.calls ? Math.round((ms / s.calls) * 10) / 10 : 0 }))
    .sort((a, b) => b.calls - a.calls || a.method.localeCompare(b.method));
}

/** API calls by method and day (GET /usage?group_by=method&granularity=day). */
export function Usage(_: PageProps) {
  const [span, setSpan] = useState(14);
  const [series, setSeries] = useState<MethodSeries[] | null>(null);
  const days = lastDays(span);
  useEffect(() => {
    setSeries(null);
    api
      .get<{ rows: UsageRow[] }>("/usage", { from: days[0], granularity: "day", group_by: "method" })
      .then((r) => setSeries(usageByMethod(r.rows, days)), (e) => { errorToast(e); setSeries([]); });
  }, [span]);
  return (
    <section>
      <h1>Usage</h1>
      <div class="card table-card">
        <div class="table-head">
          <h2>API calls by method and day</h2>
          <label class="filter">Period
            <select value={String(span)} onChange={(e) => setSpan(Number(e.currentTarget.value))} data-testid="usage-span">
              <option value="7">7 days</option>
              <option value="14">14 days</option>
              <option value="30">30 days</option>
            </select>
          </label>
        </div>
        {series === null ? <p>Loading…</p> : series.length === 0 ? <p class="muted">No calls in this period.</p> : (
          <table>
            <thead><tr><th>Method</th><th>Calls per day ({days[0]} – {days[days.length - 1]})</th><th>Calls</th><th>Errors</th><th>Average</th></tr></thead>
            <tbody>
              {series.map((s) => (
                <tr key={s.method} data-testid="usage-row" data-method={s.method}>
                  <td><code>{s.method}</code></td>
                  <td><DayBars days={days} values={s.perDay} label={s.method} /></td>
                  <td>{s.calls}</td>
                  <td>{s.errors || ""}</td>
                  <td class="small">{s.avg_ms} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}

/** One method's calls per day as bars (SVG attributes, no inline style). */
function DayBars(props: { days: string[]; values: number[]; label: string }) {
  const max = Math.max(1, ...props.values);
  const w = 6;
  return (
    <svg class="day-bars" viewBox={`0 0 ${props.days.length * w} 24`} role="img"
      aria-label={`${props.label}: ${props.values.reduce((a, b) => a + b, 0)} calls`}>
      {props.values.map((n, i) => {
        const h = n ? Math.max(1, Math.round((n / max) * 22)) : 0;
        return (
          <rect key={props.days[i]} x={i * w + 1} y={24 - h} width={w - 2} height={h} class="spark-bar">
            <title>{`${props.days[i]}: ${n} calls`}</title>
          </rect>
        );
      })}
    </svg>
  );
}
