-- wrk script: POST the file $BODY with $CTYPE, an optional bearer key $KEY
-- and, for the binary extension, Inference-Header-Content-Length $HDRLEN.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CTYPE") or "application/json"
local key = os.getenv("KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
local hl = os.getenv("HDRLEN")
if hl and hl ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = hl
end

local errors = 0
response = function(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors <= 3 then io.stderr:write("status " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
