// Keep the reader's #section when switching language: every page carries the same
// English anchors in every language, but the switcher's links carry no fragment.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a.md-select__link[hreflang]");
  if (link && location.hash) {
    link.href = link.href.split("#")[0] + location.hash;
  }
});
