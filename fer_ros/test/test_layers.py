"""The package's import graph, read from the source (imports inside functions count): no
module cycles, and each layer imports only the layers below it."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'fer_ros'
LAYERS = ('common', 'models', 'perception', 'learning', 'nodes', 'bench')  # bottom first


def module_name(path: Path) -> str:
    parts = ('fer_ros', *path.relative_to(PACKAGE).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:  # from .x import y
                base = name.split('.')[:len(name.split('.')) - node.level +
                                       (path.name == '__init__.py')]
                node_module = '.'.join(base + ([node.module] if node.module else []))
            elif isinstance(node, ast.ImportFrom):
                node_module = node.module or ''
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
                continue
            else:
                continue
            for alias in node.names:
                full = f'{node_module}.{alias.name}'
                targets.add(full if full in modules else node_module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def layer(module: str) -> int | None:
    parts = module.split('.')
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_each_layer_imports_only_the_layers_below():
    upward = [(source, target) for source, targets in import_graph().items()
              for target in targets
              if layer(source) is not None and layer(target) is not None
              and layer(target) > layer(source)]
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    graph = import_graph()
    assert 'fer_ros.perception.preprocess' in graph['fer_ros.perception.classifier']
    assert 'fer_ros.common.input_spec' in graph['fer_ros.models.registry']
    assert layer('fer_ros.models.registry') < layer('fer_ros.perception.classifier')
