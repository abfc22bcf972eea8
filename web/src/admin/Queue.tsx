import { useState } from "preact/hooks";
import { api } from "../api";
import { formatBytes, fullDate } from "../lib";
import { Empty, Pager } from "../ui";
import type { PageProps } from "./AdminApp";
import { attempt, SortTh, usePage } from "./hooks";

interface QueueEntry {
  id: number;
  status: string;
  mail_from: string;
  subject: string;
  size: number;
  attempts: number;
  next_attempt_at: string;
  last_error: string | null;
  created_at: string;
  recipients: { address: string; status?: string }[];
}

export function Queue(_: PageProps) {
  const [status, setStatus] = useState("queued");
  const list = usePage<QueueEntry>("/queue", { status }, 25, "-id");
  return (
    <section>
      <h1>Outbound queue</h1>
      <div class="card table-card">
        <div class="table-head">
          <h2>{list.page?.total ?? "…"} messages</h2>
          <label class="filter">Show
            <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
              <option value="queued">Still queued</option>
              <option value="done">Finished</option>
              <option value="">All</option>
            </select>
          </label>
          {list.page && <Pager offset={list.offset} limit={list.limit} count={list.page.items.length} total={list.page.total} onPage={list.setOffset} />}
        </div>
        {list.page && list.page.items.length === 0 ? <Empty>The queue is empty.</Empty> : (
          <table>
            <thead><tr><SortTh field="id" list={list}>Message</SortTh><th>Recipients</th><SortTh field="attempts" list={list}>Attempts</SortTh><th>Reason</th><th><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.page?.items.map((q) => (
                <tr key={q.id} data-testid="queue-row">
                  <td><strong>{q.subject || "(no subject)"}</strong>
                    <div class="muted small">from {q.mail_from || "<>"} · {formatBytes(q.size)} · {fullDate(q.created_at)}</div></td>
                  <td class="small">{q.recipients.map((r) => r.address).join(", ")}</td>
                  <td>{q.attempts}<div class="muted small">{q.status === "queued" ? `next ${fullDate(q.next_attempt_at)}` : q.status}</div></td>
                  <td class="small">{q.last_error ?? "—"}</td>
                  <td class="actions">
                    <button type="button" onClick={async () => (await attempt(() => api.post(`/queue/${q.id}/retry`), "Retry scheduled")) && list.reload()}>Retry</button>
                    <button type="button" class="danger" onClick={async () => {
                      if (confirm("Delete this message from the queue? It will not be delivered.") && (await attempt(() => api.del(`/queue/${q.id}`), "Deleted"))) list.reload();
                    }}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </section>
  );
}
