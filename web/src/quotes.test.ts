import { describe, expect, it } from "vitest";
import { foldQuotedHtml } from "./lib";

const OPEN = '<details class="quoted"><summary title="Show the quoted text" aria-label="Show the quoted text">•••</summary>';
const OPEN_SHOWN = OPEN.replace('class="quoted"', 'class="quoted" open');

/** What folding added, taken out again: must give back the input exactly. */
function unfold(html: string): string {
  return html.split(OPEN).join("").split(OPEN_SHOWN).join("").split("</details>").join("");
}

describe("folding quoted HTML", () => {
  it("folds a blockquote and leaves the text outside it untouched", () => {
    const html = '<p>Sounds good, see you <b>then</b>.</p><blockquote type="cite"><p>Lunch at 12?</p></blockquote><p>-- Bob</p>';
    expect(foldQuotedHtml(html)).toBe(
      `<p>Sounds good, see you <b>then</b>.</p>${OPEN}<blockquote type="cite"><p>Lunch at 12?</p></blockquote></details><p>-- Bob</p>`,
    );
  });
  it("folds nested quotes once, at the outermost", () => {
    const html = "<p>Yes.</p><blockquote><p>Are you sure?</p><blockquote><p>I am.</p><blockquote>Really?</blockquote></blockquote></blockquote>";
    const out = foldQuotedHtml(html);
    expect(out.split("<details").length - 1).toBe(1);
    expect(out).toBe(`<p>Yes.</p>${OPEN}${html.slice("<p>Yes.</p>".length)}</details>`);
  });
  it("folds Gmail's quote with its attribution line", () => {
    const html =
      '<div dir="ltr">Thanks!</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 1 Dec 2026 at 10:00, Ann &lt;ann@x.org&gt; wrote:<br></div>' +
      '<blockquote class="gmail_quote">The figures are in.</blockquote></div>';
    expect(foldQuotedHtml(html)).toBe(`<div dir="ltr">Thanks!</div><br>${OPEN}${html.slice(html.indexOf('<div class="gmail_quote">'))}</details>`);
  });
  it("folds Thunderbird's cite prefix together with the blockquote after it", () => {
    const html = '<p>Fine.</p>\n<div class="moz-cite-prefix">On 01/12/2026 10:00, Ann wrote:<br></div>\n<blockquote type="cite">Draft attached.</blockquote>\n';
    expect(foldQuotedHtml(html)).toBe(
      `<p>Fine.</p>\n${OPEN}<div class="moz-cite-prefix">On 01/12/2026 10:00, Ann wrote:<br></div>\n<blockquote type="cite">Draft attached.</blockquote></details>\n`,
    );
  });
  it("folds Outlook's reply header, the rule before it and everything after it", () => {
    const html = '<div>Agreed.</div><hr><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann<br><b>Sent:</b> Monday</div><div>Old text</div><p>More old text</p>';
    expect(foldQuotedHtml(html)).toBe(`<div>Agreed.</div>${OPEN}<hr>${html.slice(html.indexOf('<div id="divRplyFwdMsg"'))}</details>`);
  });
  it("folds quotes inside the sender's wrappers and tables, and several of them", () => {
    const html = "<table><tbody><tr><td><p>Top</p><blockquote>one</blockquote></td></tr></tbody></table><p>Middle</p><blockquote>two</blockquote>";
    const out = foldQuotedHtml(html);
    expect(out.split(OPEN).length - 1).toBe(2);
    expect(unfold(out)).toBe(html);
  });
  it("shows a message that is all quote, open", () => {
    const html = "<blockquote><p>Only the quote</p></blockquote><br>&nbsp;";
    const out = foldQuotedHtml(html);
    expect(out).toBe(`${OPEN_SHOWN}<blockquote><p>Only the quote</p></blockquote></details><br>&nbsp;`);
    expect(foldQuotedHtml('<img src="data:image/png;base64,AA" alt="x"><blockquote>q</blockquote>')).toContain(OPEN);
  });
  it("leaves mail without quotes, empty quotes and forwarded messages as they are", () => {
    for (const html of [
      "<p>No quote here &gt; at all</p>",
      "<p>Hi</p><blockquote> <br></blockquote>",
      '<p>FYI</p><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------<br>From: Ann</div>The memo</div>',
      '<p>See below</p><div><br><blockquote type="cite">Begin forwarded message:<br>The memo</blockquote></div>',
      "",
    ]) {
      expect(foldQuotedHtml(html)).toBe(html);
    }
  });
  it("adds nothing but details and summary, so hostile text stays escaped", () => {
    const html =
      '<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><blockquote cite="x&quot;><script>alert(2)</script>">' +
      '&lt;img src=x onerror=alert(3)&gt; &amp;lt;b&amp;gt; <a href="https://x.org/?a=1&amp;b=&quot;>" target="_blank">l</a></blockquote>';
    const out = foldQuotedHtml(html);
    expect(out).toContain(OPEN);
    expect(unfold(out)).toBe(html);
    const added = out.replace(html.slice(0, html.indexOf("<blockquote")), "");
    expect(added.startsWith(OPEN)).toBe(true);
    // The elements, attribute values aside: the input's and the fold's, nothing else.
    const tags = out.replace(/"[^"]*"/g, '""').match(/<\/?[a-z]+/gi)?.map((t) => t.replace("/", "")) ?? [];
    expect(new Set(tags)).toEqual(new Set(["<p", "<blockquote", "<a", "<details", "<summary"]));
  });
  it("leaves HTML it cannot read exactly as it is", () => {
    for (const html of ["<p>unclosed<blockquote>q</p>", "<blockquote>q</blockquote><p>a < b</p>", "<blockquote>q</blockquote></div>"]) {
      expect(foldQuotedHtml(html)).toBe(html);
    }
  });
});
