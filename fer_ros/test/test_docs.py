"""docs/nodes.md and docs/messages.md are what scripts/reference.py makes of the code: a
parameter, topic or message field added, removed or changed without its page fails here."""
import importlib.util
import re
from pathlib import Path

import pytest
from rclpy.parameter import Parameter

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location('reference', REPO / 'scripts' / 'reference.py')
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)


def hri_topics_removed(page: str) -> str:
    """fer_hri_node's topic table: only listed where hri_msgs is importable."""
    return re.sub(r'(## fer_hri_node\n(?:.*\n)*?)\| topic \|(?:.*\n)*?\n', r'\1', page)


@pytest.fixture
def with_hri():
    """hri_msgs importable here where ../shared/interfaces has its sources, else None."""
    import interfaces
    if not interfaces.SOURCES.is_dir():
        return False
    interfaces.use_here(interfaces.build())
    return True


def test_the_node_page_is_the_code(with_hri):
    page, committed = reference.node_page() + '\n', (REPO / 'docs' / 'nodes.md').read_text()
    if not with_hri:
        page, committed = hri_topics_removed(page), hri_topics_removed(committed)
    assert page == committed, 'docs/nodes.md is stale: run scripts/reference.py'


def test_the_message_page_is_the_msg_files():
    assert reference.message_page() + '\n' == (REPO / 'docs' / 'messages.md').read_text()
    page = reference.message_page()
    assert '| `label_probability` | `float32` |' in page and '| `faces` | `FaceEmotion[]` |' \
        in page


def test_a_parameter_declared_without_its_docs_fails(monkeypatch):
    from fer_ros.nodes import fer_params
    extra = fer_params.FerParam('new_knob', 1.5, 'A knob nobody documented', (0.0, 2.0))
    monkeypatch.setattr(fer_params, 'FER_PARAMETERS', (*fer_params.FER_PARAMETERS, extra))
    page = reference.node_page()
    assert '| `new_knob` | double | `1.5` | 0 – 2 | yes | A knob nobody documented |' in page
    assert page + '\n' != (REPO / 'docs' / 'nodes.md').read_text()


def test_start_only_nodes_refuse_run_time_changes_with_a_reason(ros_context, with_hri,
                                                                monkeypatch, tmp_path):
    """fer_record_node and fer_hri_node took any change and ignored it (the page said 'yes')."""
    from fer_ros.nodes.fer_hri_node import FerHriNode
    from fer_ros.nodes.fer_record_node import RecordNode
    monkeypatch.chdir(tmp_path)  # where the recorder makes its default folder
    for node in (RecordNode(context=ros_context), FerHriNode(context=ros_context)):
        try:
            result = node.set_parameters([Parameter('model', value='fer_cnn_ferplus')])[0]
            assert not result.successful and 'apply at start only' in result.reason
            assert node.get_parameter('model').value == 'fer_cnn_posed'
        finally:
            node.destroy_node()


def test_every_local_link_of_the_readme_and_docs_resolves():
    pages = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
    broken = []
    for page in pages:
        for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', page.read_text()):
            if not target.startswith(('http://', 'https://')) and \
                    not (page.parent / target).exists():
                broken.append(f'{page.name}: {target}')
    assert broken == []
    readme = (REPO / 'README.md').read_text()
    assert 'make test' in readme and '](docs/images/annotated.png)' in readme
    assert len(readme.splitlines()) < 100  # the front door: two screens at most
