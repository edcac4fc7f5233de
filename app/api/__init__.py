"""HTTP: routers, wire schemas, problem+json rendering and request guards."""
