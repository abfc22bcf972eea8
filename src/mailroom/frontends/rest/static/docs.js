// Starts Swagger UI on mailroom's OpenAPI document. It lives in a file, not inline, so the
// docs page can forbid inline scripts (Content-Security-Policy: script-src 'self').
(function () {
  "use strict";

  // Operations carry two tags, the API ("admin") and the object ("admin.domains"). Swagger UI
  // lists an operation under each of its tags, so for display keep only the most specific one,
  // and drop the tags no operation then uses (they would show as empty sections).
  function oneTagPerOperation(text) {
    var spec;
    try {
      spec = JSON.parse(text);
    } catch (e) {
      return text;
    }
    var used = {};
    Object.keys(spec.paths || {}).forEach(function (path) {
      var item = spec.paths[path];
      Object.keys(item).forEach(function (verb) {
        var op = item[verb];
        if (op && Array.isArray(op.tags) && op.tags.length > 0) {
          op.tags = [op.tags[op.tags.length - 1]];
          used[op.tags[0]] = true;
        }
      });
    });
    if (Array.isArray(spec.tags)) {
      spec.tags = spec.tags.filter(function (tag) {
        return used[tag.name];
      });
    }
    return JSON.stringify(spec);
  }

  function MailroomTags() {
    return {
      statePlugins: {
        spec: {
          wrapActions: {
            updateSpec: function (original) {
              return function (text) {
                return original(typeof text === "string" ? oneTagPerOperation(text) : text);
              };
            },
          },
        },
      },
    };
  }

  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [MailroomTags],
    layout: "BaseLayout",
    deepLinking: true,
    displayOperationId: true,
    filter: true,
    // Tags start folded: with every operation listed (more than 110 of them) Swagger UI
    // 5.35 stopped rendering after the first two tags; a tag opens on a click, or from a
    // link to it (/api/docs#/admin.domains).
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
})();
