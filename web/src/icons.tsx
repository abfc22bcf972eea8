// A few line icons as SVG (no icon font, no emoji font needed).
const PATHS: Record<string, string> = {
  clip: "M16.5 6.5 8.6 14.4a2 2 0 0 0 2.8 2.8l7.9-7.9a4 4 0 0 0-5.7-5.7L5.7 11.5a6 6 0 0 0 8.5 8.5l6.3-6.3",
  lock: "M7 11V8a5 5 0 0 1 10 0v3M5 11h14v10H5z",
  inbox: "M3 13h5l1.5 3h5L16 13h5M5 5h14l2 8v6H3v-6z",
  star: "m12 3 2.8 5.8 6.2.9-4.5 4.4 1 6.2L12 17.4l-5.5 2.9 1-6.2L3 9.7l6.2-.9z",
  flag: "M5 21V4h11l-1.5 4L16 12H5",
  clock: "M12 7v5l3 2M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z",
  send: "M3 11 21 3l-8 18-2-8z",
  draft: "M4 20h4L19 9l-4-4L4 16zM14 6l4 4",
  archive: "M3 4h18v4H3zM5 8v12h14V8M10 12h4",
  spam: "M12 3 2 20h20zM12 10v4M12 17v.5",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
  label: "M3 12V4h8l10 10-8 8z M7.5 7.5v.01",
  mute: "M11 5 6 9H3v6h3l5 4zM17 9l4 6M21 9l-4 6",
  dashboard: "M4 4h7v7H4zM13 4h7v4h-7zM13 10h7v10h-7zM4 13h7v7H4z",
  globe: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM3 12h18M12 3c3 3 3 15 0 18M12 3c-3 3-3 15 0 18",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21c0-4 4-6 8-6s8 2 8 6",
  alias: "M4 8h13l-3-3M20 16H7l3 3",
  list: "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
  key: "M14 10a4 4 0 1 0-3 3.9L13 16h2v2h2v2h4v-4l-7-6z",
};

export function Icon(props: { name: string; label?: string }) {
  return (
    <svg class="icon-svg" viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor"
      stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round"
      role={props.label ? "img" : undefined} aria-label={props.label} aria-hidden={props.label ? undefined : "true"}>
      {props.label && <title>{props.label}</title>}
      <path d={PATHS[props.name] ?? PATHS.label} />
    </svg>
  );
}
