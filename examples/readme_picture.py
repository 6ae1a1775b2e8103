"""Draw docs/quickstart.png with the README's own quick start: its first python block, run in docs/.

python examples/readme_picture.py [OUT_DIR]
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(out_dir: str = str(ROOT / "docs")) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start") :]
    code = re.search(r"```python\n(.*?)```", quick_start, re.DOTALL).group(1)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    os.chdir(out_dir)
    import torch

    torch.manual_seed(0)
    exec(compile(code, "README.md quick start", "exec"), {"__name__": "readme"})
    os.remove("glitch.json")  # the block also saves its config; only the picture is kept
    print(f"wrote {Path(out_dir) / 'quickstart.png'}")


if __name__ == "__main__":
    main(*sys.argv[1:])
