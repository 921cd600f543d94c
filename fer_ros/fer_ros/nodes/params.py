"""Parameter declaration with descriptors, ranges and forgiving start-up validation."""
from __future__ import annotations

from typing import Any, Callable

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

Validator = Callable[[Any], str | None]  # returns the reason a value is invalid, or None


def accept_integers_for_doubles(node: Node) -> None:
    """YAML files and `ros2 param set` write 3 for 3.0: make run-time changes of a double
    parameter accept integers (start values are converted in declare)."""
    def convert(params: list[Parameter]) -> list[Parameter]:
        return [Parameter(p.name, value=float(p.value))
                if p.type_ == Parameter.Type.INTEGER and node.has_parameter(p.name)
                and node.get_parameter(p.name).type_ == Parameter.Type.DOUBLE else p
                for p in params]
    node.add_pre_set_parameters_callback(convert)


def declare(node: Node, name: str, default: Any, description: str, *,
            bounds: tuple[float, float] | None = None,
            validate: Validator | None = None) -> Any:
    """Declare a parameter and return its value.

    An override that is out of range, of the wrong type or rejected by
    ``validate`` is logged with the reason and replaced by the default, so a
    bad launch argument never takes the node down. (Not declared read-only:
    rclpy cannot replace a rejected read-only value; nodes reject run-time
    changes of start-only parameters in their set-parameters callback.)
    """
    descriptor = ParameterDescriptor(description=description)
    if bounds is not None:
        if isinstance(default, float):
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(bounds[0]), to_value=float(bounds[1]), step=0.0)]
        else:
            descriptor.integer_range = [IntegerRange(
                from_value=int(bounds[0]), to_value=int(bounds[1]), step=0)]
    override = node._parameter_overrides.get(name)  # rclpy's start values (CLI, YAML)
    if isinstance(default, float) and override is not None and \
            override.type_ == Parameter.Type.INTEGER:
        node._parameter_overrides[name] = Parameter(name, value=float(override.value))
    try:
        value = node.declare_parameter(name, default, descriptor).value
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
        node.get_logger().error(f"parameter '{name}': {exc}; using the default {default!r}")
        value = node.declare_parameter(name, default, descriptor, ignore_override=True).value
    reason = validate(value) if validate else None
    if reason:
        node.get_logger().error(
            f"parameter '{name}' = {value!r} rejected: {reason}; using the default {default!r}")
        node.set_parameters([Parameter(name, value=default)])
        value = default
    return value


def refuse_run_time_changes(node: Node) -> None:
    """For a node whose parameters all apply at start: a later change is refused with the
    reason instead of being taken and ignored. Call after the last declare."""
    def check(params: list[Parameter]) -> SetParametersResult:
        names = [p.name for p in params if p.name != 'use_sim_time']
        return SetParametersResult(successful=not names, reason=(
            f"{', '.join(names)}: {node.get_name()}'s parameters apply at start only; "
            'restart it with the new value') if names else '')
    node.add_on_set_parameters_callback(check)


def one_of(*choices: str) -> Validator:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"
    return check


RELIABILITY = {'best_effort': ReliabilityPolicy.BEST_EFFORT,
               'reliable': ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last, volatile QoS of an image topic ('best_effort' is what sensor drivers use)."""
    return QoSProfile(depth=depth, reliability=RELIABILITY[reliability],
                      history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE)
