"""The shipped behaviour policies, a folder per dataset version and env (`v<N>/<env>/record.json`, its `.pt`
policies), written by `rlsft data policies` (rlsft.data.policy_export) from a PPO or SAC run; rlsft.data.making
makes the datasets from them: v0 from PPO at 1M frames, v1 to v4 from the stronger of PPO and SAC per env (v3: SAC
at 1M steps; v4: hopper's from the strongest of SAC's three 1M-step seeds) (rlsft.data.making.VERSIONS)."""
