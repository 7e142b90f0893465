// Names and roles that Material's own JavaScript leaves out, added to the elements it
// creates (axe-core's rules; the browser tests run them on every page):
// - the search dialog is named after its search field, in the page's language;
// - the "Copied to clipboard" notice is a status message, announced to screen readers;
// - each code block's button bar is no navigation landmark (dozens of unnamed ones);
// - a code annotation's marker link is named by its number, which CSS alone draws;
// - the table of contents is one landmark, not one more per nested section (a module
//   and its class, "tokenizer" and "Tokenizer", made two landmarks of the same name).
function nameWhatMaterialLeftUnnamed() {
  const search = document.querySelector(".md-search[role=dialog]:not([aria-label])");
  const field = document.querySelector(".md-search__input");
  if (search && field) {
    search.setAttribute("aria-label", field.getAttribute("aria-label") || field.placeholder);
  }
  const notice = document.querySelector(".md-dialog:not([role])");
  if (notice) notice.setAttribute("role", "status");
  for (const nav of document.querySelectorAll("nav.md-code__nav:not([role])")) {
    nav.setAttribute("role", "none");
  }
  for (const nav of document.querySelectorAll(".md-nav--secondary nav.md-nav:not([role])")) {
    nav.setAttribute("role", "none");
    nav.removeAttribute("aria-label");
  }
  for (const link of document.querySelectorAll("a.md-annotation__index:not([aria-label])")) {
    const marker = link.querySelector("[data-md-annotation-id]");
    if (marker) link.setAttribute("aria-label", marker.dataset.mdAnnotationId);
  }
}

// Material mounts these components as the page loads and when they scroll into view.
new MutationObserver(nameWhatMaterialLeftUnnamed).observe(document.body, { childList: true, subtree: true });
nameWhatMaterialLeftUnnamed();
