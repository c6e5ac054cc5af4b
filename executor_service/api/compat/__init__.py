"""Foreign code-runner protocols (Piston v2, Judge0 CE), thin mappings onto /v1's admission path.

Each protocol lives under its own path prefix; that prefix is how a request finds where its
client puts the key (deps.presented_key) and the error shape its client parses (ErrorShape).
"""

PISTON_PREFIX = "/api/v2"
JUDGE0_PREFIX = "/judge0"
