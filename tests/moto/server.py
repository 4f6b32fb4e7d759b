"""moto's S3 server for firn's tests, with one fix: a restore's clock starts at
RestoreObject.

tests/run.sh installs this into moto's virtual environment as
`firn-moto-server` (same arguments as moto_server). In moto 5 an object's
restore status is timed from when the object was written, not from the
restore request: with `set-transition` {"progression": "time", "seconds": N}
an object restored less than N seconds after its upload reads as already
restored, then as restoring, then as restored again. Here RestoreObject on an
object that was not restored puts it in IN_PROGRESS from that moment, so the
restore takes N seconds (with the default "immediate" progression it is done
at once, as in plain moto). Nothing else is changed.
"""

import datetime
import sys

from moto.s3.models import FakeKey
from moto.server import main

_moto_restore = FakeKey.restore


def _restore(self, days):
    first = self._expiry is None
    _moto_restore(self, days)
    if first:
        self.status = "IN_PROGRESS"
        # moto's ManagedState times transitions with naive datetime.now().
        self._time_progressed = datetime.datetime.now()
        self._tick = 0


FakeKey.restore = _restore

if __name__ == "__main__":
    sys.exit(main())
