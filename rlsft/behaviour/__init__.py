"""The shipped behaviour policies, one folder per env (`<env>/record.json`, its `.pt` actors), written by
`rlsft data policies` from a PPO run; rlsft.data.making makes the datasets from them."""
