using System.Reflection;
using System.Text;
using Microsoft.ML.ActivationAtlas.Extraction;
using Microsoft.ML.ActivationAtlas.Gradients;
using Microsoft.ML.ActivationAtlas.Inversion;
using Microsoft.ML.ActivationAtlas.Onnx;
using Microsoft.ML.ActivationAtlas.Projection.Umap;

namespace Microsoft.ML.ActivationAtlas.Tests.PublicApi;

/// <summary>
/// Keeps each library's public surface in a checked-in listing, <c>src/&lt;assembly&gt;/PublicAPI.txt</c>, so every
/// change to it shows in review. After a deliberate change, regenerate the listings with
/// <c>ATLAS_UPDATE_PUBLIC_API=1 dotnet test tests/Microsoft.ML.ActivationAtlas.Tests -c Release --filter FullyQualifiedName~PublicApiTests</c>.
/// </summary>
public sealed class PublicApiTests
{
    public static TheoryData<string> Assemblies => new()
    {
        typeof(OnnxModelIO).Assembly.GetName().Name!,
        typeof(GradientGraphBuilder).Assembly.GetName().Name!,
        typeof(UmapReducer).Assembly.GetName().Name!,
        typeof(IconRenderer).Assembly.GetName().Name!,
        typeof(PretrainedModels).Assembly.GetName().Name!,
    };

    [Theory]
    [MemberData(nameof(Assemblies))]
    public void PublicSurfaceMatchesTheCheckedInListing(string assemblyName)
    {
        var assembly = Assembly.Load(new AssemblyName(assemblyName));
        string listing = PublicApiListing.Generate(assembly);
        string path = Path.Combine(RepositoryRoot(), "src", assemblyName, "PublicAPI.txt");
        if (Environment.GetEnvironmentVariable("ATLAS_UPDATE_PUBLIC_API") == "1")
        {
            File.WriteAllText(path, listing);
            return;
        }
        Assert.True(File.Exists(path), $"{path} is missing: regenerate the listings (see {nameof(PublicApiTests)}).");
        string[] expected = File.ReadAllLines(path), actual = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var added = actual.Except(expected, StringComparer.Ordinal).ToList();
        var removed = expected.Except(actual, StringComparer.Ordinal).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            $"The public surface of {assemblyName} differs from {path}.\n" +
            $"Added ({added.Count}):\n  {string.Join("\n  ", added.Take(40))}\nRemoved ({removed.Count}):\n  {string.Join("\n  ", removed.Take(40))}\n" +
            "If the change is meant, regenerate: ATLAS_UPDATE_PUBLIC_API=1 dotnet test tests/Microsoft.ML.ActivationAtlas.Tests -c Release --filter FullyQualifiedName~PublicApiTests");
    }

    [Fact]
    public void ListingNamesMembersWithTheirSignatures()
    {
        string listing = PublicApiListing.Generate(typeof(OnnxModelIO).Assembly);
        Assert.Contains("Microsoft.ML.ActivationAtlas.Onnx.OnnxModelIO [static class]\n", listing);
        Assert.Contains("Microsoft.ML.ActivationAtlas.Onnx.OnnxModelIO.Load(string path, bool inlineExternalData = true) -> Microsoft.ML.ActivationAtlas.Onnx.Protobuf.ModelProto [static]\n", listing);
        Assert.Contains("Microsoft.ML.ActivationAtlas.Onnx.OnnxSessionOptions.GpuDeviceId { get; set; } -> int", listing);
        // Internal helpers are not part of it.
        Assert.DoesNotContain("AtomicFile", listing);
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.ActivationAtlas.sln")))
                return dir.FullName;
        throw new DirectoryNotFoundException($"No Microsoft.ML.ActivationAtlas.sln above {AppContext.BaseDirectory}.");
    }
}

/// <summary>
/// One line per public (or protected, in an inheritable type) type and member, sorted, so each type's line comes right
/// before its members': <c>Namespace.Type [kind] : bases</c>, <c>Namespace.Type.Member(parameters) -&gt; type [modifiers]</c>.
/// </summary>
internal static class PublicApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static string Generate(Assembly assembly)
    {
        var lines = new List<string>();
        foreach (var type in assembly.GetExportedTypes())
        {
            lines.Add(TypeLine(type));
            foreach (var member in type.GetMembers(Declared))
                if (MemberLine(type, member) is { } line)
                    lines.Add(line);
        }
        lines.Sort(StringComparer.Ordinal);
        var sb = new StringBuilder();
        foreach (var line in lines.Distinct(StringComparer.Ordinal))
            sb.Append(line).Append('\n');
        return sb.ToString();
    }

    private static string TypeLine(Type t)
    {
        string kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct"
            : typeof(Delegate).IsAssignableFrom(t) ? "delegate"
            : t.IsAbstract && t.IsSealed ? "static class" : t.IsAbstract ? "abstract class" : t.IsSealed ? "sealed class" : "class";
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum) && b != typeof(MulticastDelegate))
            bases.Add(Name(b));
        bases.AddRange(t.GetInterfaces().Where(i => i.IsPublic || i.IsNestedPublic).Select(Name).Order(StringComparer.Ordinal));
        return $"{Name(t)} [{kind}]" + (bases.Count > 0 ? " : " + string.Join(", ", bases) : "");
    }

    private static bool Visible(Type owner, MethodBase? m) =>
        m is not null && (m.IsPublic || (!owner.IsSealed && (m.IsFamily || m.IsFamilyOrAssembly)));

    private static string? MemberLine(Type owner, MemberInfo member)
    {
        string prefix = Name(owner) + ".";
        switch (member)
        {
            case ConstructorInfo c when Visible(owner, c) && !c.IsStatic:
                return $"{prefix}{Bare(owner)}({Parameters(c)})";
            case MethodInfo m when Visible(owner, m) && !m.IsSpecialName || (member is MethodInfo op && op.Name.StartsWith("op_", StringComparison.Ordinal) && op.IsPublic):
            {
                var mi = (MethodInfo)member;
                string generic = mi.IsGenericMethodDefinition ? "<" + string.Join(", ", mi.GetGenericArguments().Select(a => a.Name)) + ">" : "";
                return $"{prefix}{mi.Name}{generic}({Parameters(mi)}) -> {Name(mi.ReturnType)}{Modifiers(mi)}";
            }
            case PropertyInfo p when Visible(owner, p.GetMethod) || Visible(owner, p.SetMethod):
            {
                string accessors = (Visible(owner, p.GetMethod) ? "get; " : "")
                    + (Visible(owner, p.SetMethod) ? (IsInitOnly(p.SetMethod!) ? "init; " : "set; ") : "");
                string index = p.GetIndexParameters() is { Length: > 0 } ip ? "[" + string.Join(", ", ip.Select(Parameter)) + "]" : "";
                var accessor = p.GetMethod ?? p.SetMethod!;
                return $"{prefix}{p.Name}{index} {{ {accessors}}} -> {Name(p.PropertyType)}{Modifiers(accessor)}";
            }
            case FieldInfo f when (f.IsPublic || (!owner.IsSealed && (f.IsFamily || f.IsFamilyOrAssembly))) && !f.IsSpecialName:
                return owner.IsEnum
                    ? $"{prefix}{f.Name} = {Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture)}"
                    : $"{prefix}{f.Name} -> {Name(f.FieldType)}" + (f.IsLiteral ? " [const]" : f.IsStatic ? (f.IsInitOnly ? " [static readonly]" : " [static]") : f.IsInitOnly ? " [readonly]" : "");
            case EventInfo e when Visible(owner, e.AddMethod):
                return $"{prefix}{e.Name} -> {Name(e.EventHandlerType!)} [event]";
            default:
                return null;
        }
    }

    private static string Modifiers(MethodInfo m)
    {
        string modifiers = (m.IsStatic ? "static " : "") + (m.IsAbstract ? "abstract " : m.IsVirtual && !m.IsFinal && m.GetBaseDefinition() == m ? "virtual " : m.GetBaseDefinition() != m ? "override " : "");
        return modifiers.Length == 0 ? "" : " [" + modifiers.TrimEnd() + "]";
    }

    private static bool IsInitOnly(MethodInfo setter) =>
        setter.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.FullName == "System.Runtime.CompilerServices.IsExternalInit");

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(Parameter));

    private static string Parameter(ParameterInfo p)
    {
        var type = p.ParameterType;
        string mode = "";
        if (type.IsByRef)
        {
            mode = p.IsOut ? "out " : p.IsIn ? "in " : "ref ";
            type = type.GetElementType()!;
        }
        if (p.GetCustomAttribute<ParamArrayAttribute>() is not null)
            mode = "params ";
        string text = $"{mode}{Name(type)} {p.Name}";
        if (p.HasDefaultValue)
            text += " = " + DefaultText(p.DefaultValue);
        return text;
    }

    private static string DefaultText(object? value) => value switch
    {
        null => "null",
        string s => "\"" + s + "\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static readonly Dictionary<Type, string> s_keywords = new()
    {
        [typeof(void)] = "void", [typeof(bool)] = "bool", [typeof(byte)] = "byte", [typeof(sbyte)] = "sbyte",
        [typeof(short)] = "short", [typeof(ushort)] = "ushort", [typeof(int)] = "int", [typeof(uint)] = "uint",
        [typeof(long)] = "long", [typeof(ulong)] = "ulong", [typeof(float)] = "float", [typeof(double)] = "double",
        [typeof(decimal)] = "decimal", [typeof(char)] = "char", [typeof(string)] = "string", [typeof(object)] = "object",
    };

    private static string Bare(Type t)
    {
        string name = t.Name;
        int tick = name.IndexOf('`');
        return tick < 0 ? name : name[..tick];
    }

    private static string Name(Type t)
    {
        if (s_keywords.TryGetValue(t, out var keyword))
            return keyword;
        if (t.IsGenericParameter)
            return t.Name;
        if (t.IsArray)
            return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsByRef || t.IsPointer)
            return Name(t.GetElementType()!) + (t.IsPointer ? "*" : "");
        if (Nullable.GetUnderlyingType(t) is { } inner)
            return Name(inner) + "?";
        string outer = t.IsNested ? Name(t.DeclaringType!) + "." : (t.Namespace is null ? "" : t.Namespace + ".");
        if (!t.IsGenericType)
            return outer + t.Name;
        // Nested types of generic types carry their parent's arguments first.
        var args = t.GetGenericArguments();
        int parentCount = t.IsNested ? t.DeclaringType!.GetGenericArguments().Length : 0;
        var own = args.Skip(parentCount).ToArray();
        return outer + Bare(t) + (own.Length > 0 ? "<" + string.Join(", ", own.Select(Name)) + ">" : "");
    }
}
