"""CloudFormation's conditions evaluated for given parameter values and place, to test which resources a stack with
those values creates (cfn-lint checks the syntax; this, the outcome)."""

from __future__ import annotations

from typing import Any


def parameters(template: dict[str, Any], given: dict[str, str], account: str = "123456789012",
               region: str = "us-east-1") -> dict[str, Any]:
    """Parameter values as CloudFormation resolves them (the given value or the default; a CommaDelimitedList is a
    list), with the pseudo parameters AWS::AccountId and AWS::Region."""
    values: dict[str, Any] = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws"}
    for name, declared in template["Parameters"].items():
        value = given.get(name, declared.get("Default"))
        values[name] = value.split(",") if declared["Type"] == "CommaDelimitedList" and value is not None else value
    return values


def evaluate(node: Any, values: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """The intrinsic functions a condition may use: Fn::Equals, Not, And, Or, Join, Select, Split, Ref, Condition."""
    if isinstance(node, list):
        return [evaluate(item, values, conditions) for item in node]
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return values[argument]
    if function == "Condition":
        return evaluate(conditions[argument], values, conditions)
    args = evaluate(argument, values, conditions)
    if function == "Fn::Equals":
        return args[0] == args[1]
    if function == "Fn::Not":
        return not args[0]
    if function == "Fn::And":
        return all(args)
    if function == "Fn::Or":
        return any(args)
    if function == "Fn::Join":
        return args[0].join(args[1])
    if function == "Fn::Select":
        return args[1][int(args[0])]
    if function == "Fn::Split":
        return args[1].split(args[0])
    raise AssertionError(f"{function} in a condition")


def created(template: dict[str, Any], given: dict[str, str], account: str = "123456789012",
            region: str = "us-east-1") -> set[str]:
    """The logical ids of the resources a stack of `template` with these values creates in this account and region."""
    values = parameters(template, given, account, region)
    conditions = template.get("Conditions", {})
    return {name for name, resource in template["Resources"].items()
            if "Condition" not in resource or evaluate({"Condition": resource["Condition"]}, values, conditions)}
