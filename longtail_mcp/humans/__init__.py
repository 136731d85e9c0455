"""The human queue: identity and RBAC, escalations, chains and deadlines, forms, audit."""
