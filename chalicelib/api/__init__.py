"""berth's REST API: routes (routing), request parsing and rendering (handling), bodies (models), errors, OpenAPI."""
