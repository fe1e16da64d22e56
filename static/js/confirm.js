// Questions asked before a step not lightly taken back. A form with data-confirm="<dialog id>" is not
// sent as it is: its dialog asks the question instead, and only the dialog's own button, named by its
// verb, sends the form, with the answer the server looks for (core/confirmations.py). Esc or Cancel
// closes the dialog and nothing is sent. Without JavaScript the server asks the same in the page.
(function () {
  "use strict";

  function dialogOf(form) {
    var dialog = form && form.dataset && form.dataset.confirm && document.getElementById(form.dataset.confirm);
    return dialog && dialog.tagName === "DIALOG" ? dialog : null;
  }

  // Capturing, so that a form sent without its answer never reaches htmx; sight.js, loaded first,
  // has already refused a press on something that had only just appeared.
  document.addEventListener("submit", function (event) {
    var dialog = dialogOf(event.target);
    if (!dialog) return;
    if (event.submitter && event.submitter.name === "confirmed" && dialog.contains(event.submitter)) {
      // Answered: the form goes; the dialog closes once it is on its way.
      setTimeout(function () { if (dialog.open) dialog.close(); }, 0);
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    if (!dialog.open) dialog.showModal();
  }, true);

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("dialog.confirm [data-cancel]");
    if (cancel) cancel.closest("dialog").close();
  });
})();
