"""settle_heap's release_free_memory: memory one task freed goes back to the OS before the next task, which under
`airflow dags test` runs in the same process (Arrow's pool keeps what it freed for reuse until told otherwise)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_memory_freed_in_arrows_pool_goes_back_to_the_os():
    # A process of its own: the suite's own heap would blur the figures.
    code = textwrap.dedent(
        """
        import gc
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        from plugins.journey.tasks import release_free_memory

        def rss_mb():
            return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

        base = rss_mb()
        table = pc.add(pa.array(np.arange(40_000_000)), 1)  # 305 MB, allocated in Arrow's pool
        held = rss_mb()
        del table
        gc.collect()
        freed = rss_mb()
        release_free_memory()
        print(round(held - base), round(freed - base), round(rss_mb() - base))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    held, freed, released = map(int, out[-3:])
    assert held >= 250, out  # the array was really resident
    assert freed >= 250, out  # the pool kept it after it was dropped: the state the journey was in
    assert released <= 50, out  # and now the OS has it back
