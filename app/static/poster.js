// The join poster: its "Print this poster" button (no inline handlers: the Content-Security-Policy forbids them).
document.getElementById("print-poster").addEventListener("click", () => window.print());
