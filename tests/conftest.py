"""Root test configuration: the tests folder on sys.path, so every folder can `import helpers`."""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
