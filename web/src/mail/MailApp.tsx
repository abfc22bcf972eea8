import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, session, type Who } from "../api";
import { newMailNotice, noticeChannel, searchSuggestions, type NotificationPrefs } from "../lib";
import { errorToast, Login, Toasts, toast, useHashRoute, useKeydown, useSession } from "../ui";
import { Icon } from "../icons";
import { Compose } from "./Compose";
import { Contacts } from "./Contacts";
import { Settings, type ClientSettings } from "./Settings";
import { ThreadList } from "./ThreadList";
import { ThreadView } from "./ThreadView";
import { LABEL_ICONS, SYSTEM_LABEL_NAMES, type ComposeInit, type Label, type ThreadSummary } from "./types";

type ThreadPage = { n_threads: number; threads: ThreadSummary[] };

// The first screen's data, asked for at once when a session cookie is there, in parallel with
// the session check (which would otherwise come first): one round trip less to the inbox.
const early = (() => {
  const inbox = location.pathname === "/" && ["", "#/", "#/label/inbox"].includes(location.hash);
  if (!document.cookie.includes("mr_csrf=") || !inbox) return null;
  const quiet = <T,>(p: Promise<T>) => p.catch(() => null);
  return {
    labels: quiet(api.get<Label[]>("/labels")),
    threads: quiet(api.get<ThreadPage>("/threads", { label: "inbox", offset: 0, limit: 50 })),
  };
})();

/** The early answer for this request, once; null when there is none (or it failed). */
function takeEarly<K extends "labels" | "threads">(kind: K): NonNullable<typeof early>[K] | null {
  if (!early) return null;
  const found = early[kind];
  (early as Record<string, unknown>)[kind] = null;
  return found;
}

export function MailApp() {
  const [who, setWho] = useSession();
  if (who === undefined) return <div class="loading">Loading…</div>;
  if (who === null || !who.email) {
    return (
      <>
        <Login title="Sign in to your mail" onLogin={(w) => setWho(w)} />
        <Toasts />
      </>
    );
  }
  return <Mailbox who={who} onLogout={() => setWho(null)} />;
}

const PAGE = 50;
const ORDER = ["inbox", "starred", "important", "postponed", "sent", "drafts", "archive", "spam", "trash"];

export type BatchAction =
  | "archive" | "unarchive" | "read" | "unread" | "star" | "unstar" | "spam" | "not_spam"
  | "trash" | "untrash" | "mute" | "unmute" | "delete";

function Mailbox(props: { who: Who; onLogout: () => void }) {
  const [path, params] = useHashRoute();
  const query = path === "search" ? params.get("q") ?? "" : "";
  const label = path.startsWith("label/") ? decodeURIComponent(path.slice(6)) : query ? "" : "inbox";
  const openId = Number(params.get("thread")) || null;

  const [labels, setLabels] = useState<Label[]>([]);
  const [threads, setThreads] = useState<ThreadSummary[] | null>(null);
  const [loadedFor, setLoadedFor] = useState("");
  const [total, setTotal] = useState(0);
  const [offset, setOffset] = useState(0);
  const [selected, setSelected] = useState<Set<number>>(new Set());
  const [cursor, setCursor] = useState(0);
  const [compose, setCompose] = useState<ComposeInit | null>(null);
  const [search, setSearch] = useState(query);
  const [help, setHelp] = useState(false);
  const [menu, setMenu] = useState(false);
  const [settingsOpen, setSettingsOpen] = useState(false);
  const [contactsOpen, setContactsOpen] = useState(false);
  const [signature, setSignature] = useState("");
  const prefs = useRef<NotificationPrefs>({ new_mail: true, sound: false, desktop: true });
  const applySettings = (s: ClientSettings) => {
    setSignature(s.signature);
    prefs.current = s.notifications;
  };
  useEffect(() => {
    api.get<ClientSettings>("/me/settings").then(applySettings, () => setSignature(""));
  }, []);
  // A new message starts with the signature ("-- " line, RFC 3676); replies keep theirs below.
  const startCompose = (init: ComposeInit) =>
    setCompose(signature && !init.threadId && init.body === undefined ? { ...init, body: `\n\n-- \n${signature}` } : init);
  const searchRef = useRef<HTMLInputElement>(null);
  // Keys may come faster than renders: shortcuts read and move the cursor and the selection
  // through this ref (kept equal to the state), never through a stale closure.
  const live = useRef({ cursor, selected });

  const loadLabels = useCallback(async () => {
    try {
      setLabels((await takeEarly("labels")) ?? (await api.get<Label[]>("/labels")));
    } catch (e) {
      errorToast(e);
    }
  }, []);
  // Only the answer to the latest request is shown (an older one may arrive after it).
  const latest = useRef(0);
  const wanted = useRef("");
  wanted.current = `${label}|${query}|${offset}`;
  const loadThreads = useCallback(async () => {
    const key = `${label}|${query}|${offset}`;
    // A reload for a list no longer shown (an action's or a push event's from before a switch)
    // is not made: counted as the latest, it would drop the answer for the list shown.
    if (key !== wanted.current) return;
    const mine = ++latest.current;
    try {
      const first = label === "inbox" && !query && offset === 0 ? await takeEarly("threads") : null;
      const r = first ?? (await api.get<ThreadPage>("/threads", {
        label: label || undefined, q: query || undefined, offset, limit: PAGE,
      }));
      // A later request, or a reload for a list no longer shown (a push event's), loses.
      if (mine !== latest.current || key !== wanted.current) return;
      setThreads(r.threads);
      setTotal(r.n_threads);
      setLoadedFor(key);
    } catch (e) {
      errorToast(e);
      setThreads([]);
    }
  }, [label, query, offset]);

  useEffect(() => void loadLabels(), []);
  useEffect(() => {
    live.current.selected = new Set();
    live.current.cursor = 0;
    setSelected(live.current.selected);
    setCursor(0);
  }, [label, query]);
  useEffect(() => setOffset(0), [label, query]);
  useEffect(() => void loadThreads(), [loadThreads]);
  useEffect(() => setSearch(query), [query]);
  // Live updates: the push channel (SSE read with fetch, so the CSRF header goes along).
  const pushed = useRef(false);
  useEffect(() => listen(() => { pushed.current = true; loadLabels(); loadThreads(); }), [loadThreads]);
  // New mail (the inbox's unread count grew on a push event): told as the settings say.
  const inboxUnread = useRef<number | undefined>(undefined);
  useEffect(() => {
    const inbox = labels.find((l) => l.name === "inbox");
    if (!inbox) return;
    const notice = pushed.current ? newMailNotice(inboxUnread.current, inbox.threads_unread) : null;
    inboxUnread.current = inbox.threads_unread;
    pushed.current = false;
    if (!notice) return;
    const permission = typeof Notification === "undefined" ? "unsupported" : Notification.permission;
    const channel = noticeChannel(prefs.current, permission, document.visibilityState === "hidden");
    if (channel === "system") new Notification("mailroom", { body: notice, tag: "new-mail" });
    else if (channel === "toast") toast(notice);
  }, [labels]);

  const go = (hash: string) => { location.hash = hash; };
  const open = (id: number | null) => {
    const base = query ? `#/search?q=${encodeURIComponent(query)}` : `#/label/${encodeURIComponent(label)}`;
    go(id === null ? base : `${base}${query ? "&" : "?"}thread=${id}`);
  };

  const act = async (action: BatchAction | "add_label" | "remove_label" | "postpone", ids?: number[], extra: Record<string, string> = {}) => {
    const { selected, cursor } = live.current;
    const targets = ids ?? (selected.size ? [...selected] : threads && threads[cursor] ? [threads[cursor].thread_id] : []);
    if (!targets.length) return;
    try {
      const r = await api.post<{ n_ok: number }>("/threads/batch", { ids: targets, action, ...extra });
      toast(`${verb(action)} ${r.n_ok} conversation${r.n_ok === 1 ? "" : "s"}`);
      live.current.selected = new Set();
      setSelected(live.current.selected);
      if (openId !== null && targets.includes(openId) && leaves(action, label)) open(null);
      await Promise.all([loadThreads(), loadLabels()]);
    } catch (e) {
      errorToast(e);
    }
  };

  /** A user label: made here, or deleted (its conversations keep their other labels). */
  const createLabel = async () => {
    const name = prompt("Name of the new label")?.trim();
    if (!name) return;
    try {
      await api.post("/labels", { name });
      toast(`Label ${name} created`);
      await loadLabels();
    } catch (e) {
      errorToast(e);
    }
  };
  const deleteLabel = async () => {
    const found = labels.find((l) => l.name === label && l.kind !== "system");
    if (!found || !confirm(`Delete the label ${found.name}? Its conversations stay, without it.`)) return;
    try {
      await api.del(`/labels/${found.id}`);
      toast(`Label ${found.name} deleted`);
      go("#/label/inbox");
      await loadLabels();
    } catch (e) {
      errorToast(e);
    }
  };

  // Keyboard shortcuts (not while typing), on the list as last rendered.
  useKeydown((e) => {
    const t = e.target as HTMLElement;
    if (e.ctrlKey || e.metaKey || e.altKey || t.closest("input, textarea, select, [contenteditable]")) return;
    const list = threads ?? [];
    const cursor = live.current.cursor;
    const current = list[cursor];
    const move = (to: number) => {
      live.current.cursor = Math.max(0, Math.min(to, list.length - 1));
      setCursor(live.current.cursor);
    };
    switch (e.key) {
      case "j": move(cursor + 1); break;
      case "k": move(cursor - 1); break;
      case "o": case "Enter": if (current) open(current.thread_id); break;
      case "u": open(null); break;
      case "x": if (current) toggle(current.thread_id); break;
      case "e": act("archive"); break;
      case "#": act("trash"); break;
      case "!": act("spam"); break;
      case "s": if (current) act(current.is_starred ? "unstar" : "star", [current.thread_id]); break;
      case "I": act("read"); break;
      case "U": act("unread"); break;
      case "m": act("mute"); break;
      case "c": startCompose({}); break;
      case "/": searchRef.current?.focus(); break;
      case "?": setHelp(!help); break;
      default: return;
    }
    e.preventDefault();
  });

  const toggle = (id: number) => {
    const next = new Set(live.current.selected);
    next.has(id) ? next.delete(id) : next.add(id);
    live.current.selected = next;
    setSelected(next);
  };

  const logout = async () => {
    try { await session.logout(); } catch (e) { errorToast(e); }
    props.onLogout();
  };

  const sorted = [...labels].sort((a, b) => {
    const ia = ORDER.indexOf(a.name), ib = ORDER.indexOf(b.name);
    if (a.kind === "system" && b.kind === "system") return ia - ib;
    if (a.kind === "system") return -1;
    if (b.kind === "system") return 1;
    return a.name.localeCompare(b.name);
  });
  const suggestions = searchSuggestions(search, labels.map((l) => l.name));
  const title = query ? `Search: ${query}` : SYSTEM_LABEL_NAMES[label] ?? label;

  return (
    <div class={`mail-shell ${openId !== null ? "reading" : ""} ${menu ? "menu-open" : ""}`}>
      <header class="topbar">
        <button type="button" class="icon menu-button" aria-label="Labels" aria-expanded={menu} onClick={() => setMenu(!menu)}>☰</button>
        <a class="brand" href="#/label/inbox"><span class="logo" aria-hidden="true">✉</span> <span class="brand-name">mailroom</span></a>
        <form class="search" role="search" onSubmit={(e) => {
          e.preventDefault();
          go(search.trim() ? `#/search?q=${encodeURIComponent(search.trim())}` : "#/label/inbox");
          searchRef.current?.blur();
        }}>
          <input ref={searchRef} type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)}
            placeholder="Search mail (from:, has:attachment, is:unread …)" aria-label="Search mail"
            data-testid="search-input" list="search-suggestions" autocomplete="off" />
          <datalist id="search-suggestions">{suggestions.map((s) => <option key={s} value={s} />)}</datalist>
        </form>
        <span class="spacer" />
        <span class="who">{props.who.email}</span>
        {(props.who.is_admin || props.who.managed_domains.length > 0) && <a class="button ghost" href="/admin">Admin</a>}
        <button type="button" class="ghost" onClick={() => setContactsOpen(true)} data-testid="contacts-open">Contacts</button>
        <button type="button" class="ghost" onClick={() => setSettingsOpen(true)} data-testid="settings-open">Settings</button>
        <button type="button" class="ghost" onClick={logout} data-testid="logout">Sign out</button>
      </header>
      <nav class="labels" aria-label="Labels" onClick={(e) => (e.target as HTMLElement).closest("a") && setMenu(false)}>
        <button type="button" class="primary compose-button" onClick={() => startCompose({})} data-testid="compose-open">✎ Compose</button>
        <ul>
          {sorted.map((l) => (
            <li key={l.id}>
              <a href={`#/label/${encodeURIComponent(l.name)}`} class={!query && label === l.name ? "active" : ""}
                data-testid="label-item" data-label={l.name} aria-current={!query && label === l.name ? "page" : undefined}>
                <span class="label-icon"><Icon name={LABEL_ICONS[l.name] ?? "label"} /></span>
                <span class="label-name">{SYSTEM_LABEL_NAMES[l.name] ?? l.name}</span>
                {l.threads_unread > 0 && <span class="count" aria-label={`${l.threads_unread} unread`}>{l.threads_unread}</span>}
              </a>
            </li>
          ))}
        </ul>
        <button type="button" class="ghost small new-label" onClick={createLabel} data-testid="label-create">+ New label</button>
      </nav>
      <main class="mail-main">
      <ThreadList title={title} threads={threads} total={total} offset={offset} pageSize={PAGE} cursor={cursor}
        selected={selected} openId={openId} onOpen={open} onToggle={toggle}
        onSelectAll={(all) => {
          live.current.selected = all ? new Set((threads ?? []).map((t) => t.thread_id)) : new Set();
          setSelected(live.current.selected);
        }}
        onPage={setOffset} onAction={act} label={label}
        userLabels={labels.filter((l) => l.kind !== "system").map((l) => l.name)}
        onLabel={(name) => act("add_label", undefined, { label: name })}
        onSnooze={(until) => act("postpone", undefined, { until })}
        onUnlabel={() => act("remove_label", undefined, { label })} onDeleteLabel={deleteLabel} busy={loadedFor !== `${label}|${query}|${offset}`} />
      {openId !== null && (
        <ThreadView key={openId} id={openId} me={props.who.email!} onClose={() => open(null)}
          onAction={(a) => act(a, [openId])} onUnlabel={(name) => act("remove_label", [openId], { label: name })}
          userLabels={labels.filter((l) => l.kind !== "system").map((l) => l.name)} onCompose={setCompose} onChanged={() => { loadLabels(); loadThreads(); }} />
      )}
      </main>
      {compose && <Compose init={compose} me={props.who.email!} onClose={() => setCompose(null)} onSent={() => { setCompose(null); loadLabels(); loadThreads(); }} />}
      {help && <Shortcuts onClose={() => setHelp(false)} />}
      {contactsOpen && <Contacts onClose={() => setContactsOpen(false)} />}
      {settingsOpen && <Settings onClose={() => setSettingsOpen(false)} onSaved={applySettings} />}
      <Toasts />
    </div>
  );
}

function verb(action: BatchAction | "add_label" | "remove_label" | "postpone"): string {
  const words: Partial<Record<BatchAction | "add_label" | "remove_label" | "postpone", string>> = {
    add_label: "Labelled", remove_label: "Label removed from", postpone: "Snoozed",
    archive: "Archived", unarchive: "Moved to the inbox", read: "Marked as read", unread: "Marked as unread",
    star: "Starred", unstar: "Unstarred", spam: "Reported as spam", not_spam: "Not spam:", trash: "Deleted",
    untrash: "Restored", mute: "Muted", unmute: "Unmuted", delete: "Deleted forever",
  };
  return words[action] ?? action;
}

function leaves(action: string, label: string): boolean {
  return ["archive", "spam", "trash", "delete", "mute", "postpone"].includes(action) || (action === "unstar" && label === "starred")
    || (action === "remove_label" && !SYSTEM_LABEL_NAMES[label]);
}

function Shortcuts(props: { onClose: () => void }) {
  const keys: [string, string][] = [
    ["j / k", "next / previous conversation"], ["o or Enter", "open"], ["u", "back to the list"],
    ["x", "select"], ["e", "archive"], ["#", "delete"], ["!", "spam"], ["s", "star"], ["I / U", "read / unread"],
    ["m", "mute"], ["c", "compose"], ["r / a / f", "reply / reply all / forward (in a conversation)"],
    ["/", "search"], ["?", "this help"],
  ];
  return (
    <div class="modal-backdrop" onClick={props.onClose}>
      <div class="modal card" role="dialog" aria-label="Keyboard shortcuts">
        <h2>Keyboard shortcuts</h2>
        <dl class="shortcuts">{keys.map(([k, v]) => <><dt key={k}><kbd>{k}</kbd></dt><dd>{v}</dd></>)}</dl>
      </div>
    </div>
  );
}

/** Read the push channel as Server-Sent Events over fetch; call onEvent for mail events.
 *  Reconnects with a back-off; returns the function that stops it. */
function listen(onEvent: () => void): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let timer: number | undefined;
  let pending: number | undefined;
  const run = async (delay: number) => {
    if (stopped) return;
    controller = new AbortController();
    try {
      const csrf = document.cookie.split("; ").find((c) => c.startsWith("mr_csrf="))?.slice(8) ?? "";
      const r = await fetch("/api/v1/events", {
        headers: { Accept: "text/event-stream", "X-CSRF-Token": decodeURIComponent(csrf) },
        signal: controller.signal,
      });
      if (!r.ok || !r.body) throw new Error(String(r.status));
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const frames = buffer.split("\n\n");
        buffer = frames.pop() ?? "";
        // A read that resolved after stop() (the abort is not immediate) schedules nothing.
        if (!stopped && frames.some((f) => /^event: (?!ping)/m.test(f))) {
          clearTimeout(pending);
          pending = window.setTimeout(() => { if (!stopped) onEvent(); }, 150); // a burst of events, one reload
        }
      }
      delay = 1000;
    } catch {
      if (stopped) return;
    }
    timer = window.setTimeout(() => run(Math.min(delay * 2, 30000)), delay);
  };
  run(1000);
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(pending);
    controller?.abort();
  };
}
