"""``make spec``: vendor udata's v1 Swagger 2.0 document as OpenAPI 3.1 fragments (openapi/)."""
