"""What berth needs around its Lambdas in a real account: IAM policies (rendered into .chalice/) and the merge
template for `chalice package` (resources.yaml)."""
