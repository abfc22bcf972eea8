import { useState } from "preact/hooks";
import { session, type Who } from "../api";
import { Icon } from "../icons";
import { Login, Toasts, errorToast, useHashRoute, useSession } from "../ui";
import { ApiKeys } from "./ApiKeys";
import { Aliases } from "./Aliases";
import { Audit } from "./Audit";
import { Dashboard } from "./Dashboard";
import { Domains } from "./Domains";
import { Queue } from "./Queue";
import { Relays } from "./Relays";
import { Usage } from "./Usage";
import { Users } from "./Users";

const SECTIONS = [
  { path: "", label: "Dashboard", icon: "dashboard", admin: false },
  { path: "domains", label: "Domains", icon: "globe", admin: false },
  { path: "users", label: "Users", icon: "user", admin: false },
  { path: "aliases", label: "Aliases", icon: "alias", admin: false },
  { path: "relays", label: "Relays", icon: "send", admin: true },
  { path: "apikeys", label: "API keys", icon: "key", admin: false },
  { path: "queue", label: "Queue", icon: "inbox", admin: true },
  { path: "audit", label: "Audit log", icon: "list", admin: false },
  { path: "usage", label: "Usage", icon: "dashboard", admin: false },
];

export function AdminApp() {
  const [who, setWho] = useSession();
  if (who === undefined) return <div class="loading">Loading…</div>;
  if (who === null || (!who.is_admin && who.managed_domains.length === 0)) {
    return (
      <>
        {who && <p class="banner banner-error">{who.email} is neither an administrator nor a domain manager.</p>}
        <Login title="Admin console" allowKey onLogin={(w) => setWho(w)} />
        <Toasts />
      </>
    );
  }
  return <Console who={who} onLogout={() => setWho(null)} />;
}

export interface PageProps {
  who: Who;
  params: URLSearchParams;
}

function Console(props: { who: Who; onLogout: () => void }) {
  const [path, params] = useHashRoute();
  const [menu, setMenu] = useState(false);
  const who = props.who;
  const logout = async () => {
    try {
      await session.logout();
    } catch (e) {
      errorToast(e);
    }
    props.onLogout();
  };
  const sections = SECTIONS.filter((s) => who.is_admin || !s.admin);
  const page = (() => {
    const p = { who, params };
    switch (path) {
      case "domains": return <Domains {...p} />;
      case "users": return <Users {...p} />;
      case "aliases": return <Aliases {...p} />;
      case "apikeys": return <ApiKeys {...p} />;
      case "relays": return <Relays {...p} />;
      case "queue": return <Queue {...p} />;
      case "audit": return <Audit {...p} />;
      case "usage": return <Usage {...p} />;
      default: return <Dashboard {...p} />;
    }
  })();
  return (
    <div class={`shell ${menu ? "menu-open" : ""}`}>
      <header class="topbar">
        <button type="button" class="icon menu-button" aria-label="Menu" onClick={() => setMenu(!menu)}>☰</button>
        <a class="brand" href="#/">
          <span class="logo" aria-hidden="true">✉</span> mailroom <span class="brand-sub">admin</span>
        </a>
        <span class="spacer" />
        <span class="who" title={who.is_admin ? "Global administrator" : `Manager of ${who.managed_domains.join(", ")}`}>
          {who.email ?? `API key ${who.key_id}`}
          <span class={`badge ${who.is_admin ? "badge-accent" : ""}`}>{who.is_admin ? "admin" : "manager"}</span>
        </span>
        <a class="button ghost" href="/">Webmail</a>
        <button type="button" class="ghost" onClick={logout} data-testid="logout">Sign out</button>
      </header>
      <nav class="sidebar" aria-label="Sections" onClick={() => setMenu(false)}>
        {sections.map((s) => (
          <a key={s.path} href={`#/${s.path}`} class={path === s.path ? "active" : ""}
            aria-current={path === s.path ? "page" : undefined} data-testid={s.path ? `nav-${s.path}` : "nav-dashboard"}>
            <span class="nav-icon"><Icon name={s.icon} /></span>
            {s.label}
          </a>
        ))}
      </nav>
      <main class="content">{page}</main>
      <Toasts />
    </div>
  );
}
