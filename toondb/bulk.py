"""The bulk vector API under the import path of the product guide
(``from toondb.bulk import bulk_build_index, bulk_query_index``). It lives in
``toondb.vector.bulk``, which documents it; this name is that same module object,
so ``toondb.bulk.X = ...`` changes what the API uses."""

import sys

from toondb.vector import bulk as _bulk

sys.modules[__name__] = _bulk
