-- Argo CD health check for example.com/MyResource (hub-operator).
-- Healthy: every selected cluster runs the current generation, Available.
-- Degraded: a cluster is failing; the message names it and says why.
-- Suspended: spec.suspend is true, or the rollout waits for a person
-- (paused, or a stage waiting for approval). Progressing: anything else.
local hs = { status = "Progressing", message = "waiting for hub-operator to report a status" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil and
    obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "hub-operator has not observed generation " .. obj.metadata.generation .. " yet"
  return hs
end
local conditions = {}
for _, c in ipairs(obj.status.conditions) do
  conditions[c.type] = c
end
local function has(type, status)
  return conditions[type] ~= nil and conditions[type].status == status
end
if has("Stalled", "True") then
  hs.status = "Degraded"
  hs.message = conditions["Stalled"].message
elseif has("Ready", "False") and conditions["Ready"].reason == "Suspended" then
  hs.status = "Suspended"
  hs.message = conditions["Ready"].message
elseif obj.status.rollout ~= nil and
    (obj.status.rollout.phase == "Paused" or obj.status.rollout.phase == "WaitingForApproval") then
  hs.status = "Suspended"
  hs.message = obj.status.rollout.message
elseif has("Degraded", "True") then
  hs.status = "Degraded"
  hs.message = conditions["Degraded"].message
elseif has("Ready", "True") then
  hs.status = "Healthy"
  hs.message = conditions["Ready"].message
elseif conditions["Ready"] ~= nil then
  hs.message = conditions["Ready"].message
end
return hs
