// Starts Swagger UI on /docs; a file of its own so that the page needs no inline script.
// No deep links: they put a link inside each operation's expand button (nested controls).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: false });
