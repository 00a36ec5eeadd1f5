"""The data folders at the top of the repository (schemas/, systemd/, templates/,
manifests/, monitoring/) go into the wheel as ``seams/_data/…``, where ``seams.resources`` finds
them through importlib.resources. A checkout (or an editable install) reads them where
they are."""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("schemas", "systemd", "templates", "manifests", "monitoring")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "seams" / "_data"
        for folder in DATA:
            for src in sorted((root / folder).rglob("*")):
                if src.is_file() and "__pycache__" not in src.parts:
                    target = dest / src.relative_to(root)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.copy_file(str(src), str(target))


setup(cmdclass={"build_py": BuildWithData})
