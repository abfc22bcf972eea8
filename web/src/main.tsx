import { render } from "preact";
import { AdminApp } from "./admin/AdminApp";
import { MailApp } from "./mail/MailApp";
import "./style.css";

const root = document.getElementById("app")!;
const admin = location.pathname === "/admin" || location.pathname.startsWith("/admin/");
document.title = admin ? "mailroom admin" : "mailroom";
render(admin ? <AdminApp /> : <MailApp />, root);
