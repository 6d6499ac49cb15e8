"""The shipped behaviour policies, a folder per dataset version and env (`v<N>/<env>/record.json`, its `.pt`
policies), written by `rlsft data policies` (rlsft.data.policy_export) from a PPO or SAC run; rlsft.data.making
makes the datasets from them: v0 from PPO at 1M frames, later versions from the stronger of PPO and SAC per env
(rlsft.data.making.VERSIONS lists the versions and what each one's policies are)."""
