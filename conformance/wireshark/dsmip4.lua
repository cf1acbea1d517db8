-- Wireshark dissector for the Dual-Stack Mobile IPv4 extension (RFC 5454, type 152).
-- Shipped with dsmip4-conformance; install with `dsmip4 wireshark-plugin --install`, or load
-- once with `tshark -X lua_script:dsmip4.lua`.
--
-- Wireshark's own Mobile IP dissector names type 152 but shows its body as raw bytes; this
-- post-dissector finds every type-152 extension it saw and adds the RFC 5454 fields:
-- subtype, prefix length, prefix, code and reserved. For RFC 3519 tunnel data (message type
-- 4) it names the next header and marks IPv6 (41) as RFC 5454 §3.9 traffic; Wireshark itself
-- then decodes the carried IPv6 packet.

local dsmip4 = Proto("dsmip4", "Dual-Stack Mobile IPv4 (RFC 5454)")

local SUBTYPES = { [1] = "IPv6 Prefix Request", [2] = "IPv6 Prefix Reply",
                   [3] = "IPv6 Tunneling Mode" }
local CODES = { [0] = "Accepted, tunnel to the IPv4 home address",
                [1] = "Accepted, tunnel to the IPv4 care-of address",
                [8] = "Rejected, reason unspecified",
                [9] = "Rejected, administratively prohibited" }
local LENGTHS = { [1] = 18, [2] = 20, [3] = 2 }

local f = dsmip4.fields
f.subtype = ProtoField.uint8("dsmip4.subtype", "Sub-type", base.DEC, SUBTYPES)
f.length = ProtoField.uint8("dsmip4.length", "Length", base.DEC)
f.prefix_length = ProtoField.uint8("dsmip4.prefix_length", "Prefix length", base.DEC)
f.prefix = ProtoField.ipv6("dsmip4.prefix", "Prefix")
f.code = ProtoField.uint8("dsmip4.code", "Code", base.DEC, CODES)
f.accepted = ProtoField.bool("dsmip4.accepted", "Accepted (code 0-7)")
f.reserved = ProtoField.uint8("dsmip4.reserved", "Reserved", base.HEX)
f.tunnel_next_header = ProtoField.uint8("dsmip4.tunnel.next_header", "Tunnel data next header",
                                        base.DEC, { [4] = "IPv4", [41] = "IPv6", [47] = "GRE" })
f.tunnel_ipv6 = ProtoField.bool("dsmip4.tunnel.ipv6", "Carries IPv6 (RFC 5454 §3.9)")

local e_reserved = ProtoExpert.new("dsmip4.reserved.nonzero", "Reserved field is not zero",
                                   expert.group.PROTOCOL, expert.severity.WARN)
local e_length = ProtoExpert.new("dsmip4.length.bad", "Length does not fit the sub-type",
                                 expert.group.MALFORMED, expert.severity.ERROR)
local e_subtype = ProtoExpert.new("dsmip4.subtype.unknown", "Sub-type not defined by RFC 5454",
                                  expert.group.UNDECODED, expert.severity.NOTE)
dsmip4.experts = { e_reserved, e_length, e_subtype }

local ext_type = Field.new("mip.ext.type")
local tunnel_next_header = Field.new("mip.nattt.nexthdr")

local function reserved(tree, range)
    local item = tree:add(f.reserved, range)
    if range:uint() ~= 0 then item:add_proto_expert_info(e_reserved) end
end

local function extension(tvb, tree, off)
    if off + 2 > tvb:len() then return end
    local len = tvb(off + 1, 1):uint()
    if len == 0 or off + 2 + len > tvb:len() then
        tree:add(dsmip4, tvb(off, math.min(2, tvb:len() - off)), "DSMIPv4 extension")
            :add_proto_expert_info(e_length)
        return
    end
    local subtype = tvb(off + 2, 1):uint()
    local node = tree:add(dsmip4, tvb(off, 2 + len),
                          "DSMIPv4 " .. (SUBTYPES[subtype] or ("sub-type " .. subtype)))
    node:add(f.length, tvb(off + 1, 1))
    node:add(f.subtype, tvb(off + 2, 1))
    if LENGTHS[subtype] == nil then
        node:add_proto_expert_info(e_subtype)
        return
    end
    if len ~= LENGTHS[subtype] then
        node:add_proto_expert_info(e_length)
        return
    end
    if subtype == 1 then
        node:add(f.prefix_length, tvb(off + 3, 1))
        node:add(f.prefix, tvb(off + 4, 16))
        node:append_text(string.format(": %s/%d", tostring(tvb(off + 4, 16):ipv6()),
                                       tvb(off + 3, 1):uint()))
    elseif subtype == 2 then
        local code = tvb(off + 3, 1):uint()
        node:add(f.code, tvb(off + 3, 1))
        node:add(f.accepted, tvb(off + 3, 1), code <= 7)
        node:add(f.prefix_length, tvb(off + 4, 1))
        reserved(node, tvb(off + 5, 1))
        node:add(f.prefix, tvb(off + 6, 16))
        node:append_text(string.format(": %s/%d, code %d", tostring(tvb(off + 6, 16):ipv6()),
                                       tvb(off + 4, 1):uint(), code))
    else
        reserved(node, tvb(off + 3, 1))
    end
end

local function tunnel_data(tvb, tree)
    for _, fi in ipairs({ tunnel_next_header() }) do
        if fi.source == tvb then
            local node = tree:add(dsmip4, fi.range, "RFC 3519 tunnel data")
            node:add(f.tunnel_next_header, fi.range)
            node:add(f.tunnel_ipv6, fi.range, fi.value == 41)
            if fi.value == 41 then node:append_text(": IPv6 (RFC 5454 §3.9)") end
        end
    end
end

function dsmip4.dissector(tvb, pinfo, tree)
    tunnel_data(tvb, tree)
    local found = { ext_type() }
    local first = true
    for _, fi in ipairs(found) do
        if fi.value == 152 and fi.source == tvb then
            if first then
                pinfo.cols.protocol:append("/DSMIPv4")
                first = false
            end
            extension(tvb, tree, fi.offset)
        end
    end
end

register_postdissector(dsmip4)
